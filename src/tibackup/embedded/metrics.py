"""Prometheus metrics per BackupSchedule, read from the store at each scrape (so they are never stale).

- ``tibackup_controller_up``: 1 (the controller serves its own metrics: absent means it is gone);
- ``tibackup_schedule_created_timestamp_seconds``: when the schedule was created;
- ``tibackup_schedule_last_success_timestamp_seconds``: completion time of the newest Complete backup,
  0 when none succeeded yet (control.alerting: the shipped alert rules need a series from the start);
- ``tibackup_schedule_last_backup_status{phase}``: 1 for the phase of the newest backup, 0 for the others;
- ``tibackup_schedule_last_backup_duration_seconds``: start to end of the newest finished backup;
- ``tibackup_schedule_last_backup_size_bytes``: size of the newest Complete backup;
- ``tibackup_schedule_skipped_ticks_total``: ticks not taken (overlap or pause) since the controller started;
- ``tibackup_schedule_backups{phase}``: Backup objects of the schedule, by phase;
- ``tibackup_schedule_paused`` and ``tibackup_schedule_next_backup_timestamp_seconds``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tibackup.control.alerting import schedule_signals
from tibackup.embedded.lifecycle import owned_backups
from tibackup.embedded.store import KIND_SCHEDULE, Store
from tibackup.errors import InvalidSpecError
from tibackup.resources import Backup, BackupSchedule, Phase, parse_duration
from tibackup.resources.meta import utc

LABELS = ["namespace", "schedule"]
PHASES = [p.value for p in Phase]


class SkipCounter:
    """Skipped ticks per schedule, counted by the controller (thread-safe: scrapes run on another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, namespace: str, schedule: str) -> None:
        with self._lock:
            key = (namespace, schedule)
            self._counts[key] = self._counts.get(key, 0) + 1

    def get(self, namespace: str, schedule: str) -> int:
        with self._lock:
            return self._counts.get((namespace, schedule), 0)


def _created(backup: Backup) -> float:
    stamp = backup.metadata.creation_timestamp
    return utc(stamp).timestamp() if stamp else 0.0


def _duration(backup: Backup) -> float:
    status = backup.status
    if status.time_taken:
        with contextlib.suppress(InvalidSpecError):
            return parse_duration(status.time_taken).total_seconds()
    assert status.time_started is not None and status.time_completed is not None
    return (utc(status.time_completed) - utc(status.time_started)).total_seconds()


class ScheduleCollector(Collector):
    def __init__(self, state_dir: Path, skipped: SkipCounter) -> None:
        self.state_dir = state_dir
        self.skipped = skipped

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tibackup_controller_up", "1 while the controller runs (absent: it is gone).")
        up.add_metric([], 1.0)
        created = GaugeMetricFamily(
            "tibackup_schedule_created_timestamp_seconds", "When the schedule was created.", labels=LABELS
        )
        success = GaugeMetricFamily(
            "tibackup_schedule_last_success_timestamp_seconds",
            "Completion time of the newest successful backup of the schedule; 0: none yet.",
            labels=LABELS,
        )
        status = GaugeMetricFamily(
            "tibackup_schedule_last_backup_status",
            "Phase of the newest backup of the schedule (1 for its phase, 0 for the others).",
            labels=[*LABELS, "phase"],
        )
        ok = GaugeMetricFamily(  # the same name and meaning as the operator's, for one dashboard
            "tibackup_schedule_last_backup_success",
            "1 when the schedule's newest finished backup succeeded, 0 when it failed.",
            labels=LABELS,
        )
        duration = GaugeMetricFamily(
            "tibackup_schedule_last_backup_duration_seconds",
            "Duration of the newest finished backup of the schedule.",
            labels=LABELS,
        )
        size = GaugeMetricFamily(
            "tibackup_schedule_last_backup_size_bytes", "Size of the newest successful backup.", labels=LABELS
        )
        skipped = CounterMetricFamily(
            "tibackup_schedule_skipped_ticks",
            "Scheduled ticks not taken (previous backup unfinished, or paused).",
            labels=LABELS,
        )
        counts = GaugeMetricFamily(
            "tibackup_schedule_backups", "Backups of the schedule by phase.", labels=[*LABELS, "phase"]
        )
        paused = GaugeMetricFamily("tibackup_schedule_paused", "1 when spec.pause is true.", labels=LABELS)
        next_time = GaugeMetricFamily(
            "tibackup_schedule_next_backup_timestamp_seconds", "When the next backup is due.", labels=LABELS
        )
        store = Store(self.state_dir)
        try:
            schedules: list[BackupSchedule] = store.list_resources(KIND_SCHEDULE)
            for schedule in schedules:
                ns = schedule.metadata.namespace or "default"
                labels = [ns, schedule.metadata.name]
                backups = sorted(owned_backups(store, schedule), key=_created)
                self._one(labels, backups, status, duration, size, counts)
                signals = schedule_signals(schedule, backups)
                created.add_metric(labels, signals.created)
                success.add_metric(labels, signals.last_success)
                if signals.last_ok is not None:
                    ok.add_metric(labels, signals.last_ok)
                skipped.add_metric(labels, self.skipped.get(ns, schedule.metadata.name))
                paused.add_metric(labels, 1.0 if schedule.spec.pause else 0.0)
                if schedule.status.next_backup_time is not None:
                    next_time.add_metric(labels, utc(schedule.status.next_backup_time).timestamp())
        finally:
            store.close()
        yield from (up, created, success, status, ok, duration, size, skipped, counts, paused, next_time)

    @staticmethod
    def _one(
        labels: list[str],
        backups: list[Backup],
        status: GaugeMetricFamily,
        duration: GaugeMetricFamily,
        size: GaugeMetricFamily,
        counts: GaugeMetricFamily,
    ) -> None:
        complete = [b for b in backups if b.status.phase == Phase.COMPLETE]
        if complete:
            size.add_metric(labels, float(complete[-1].status.backup_size or 0))
        if backups:
            phase = backups[-1].status.phase or ""
            for name in PHASES:
                status.add_metric([*labels, name], 1.0 if name == phase else 0.0)
        finished = [
            b for b in backups if b.status.time_taken or (b.status.time_started and b.status.time_completed)
        ]
        if finished:
            duration.add_metric(labels, _duration(finished[-1]))
        by_phase: dict[str, int] = {}
        for backup in backups:
            key = backup.status.phase.value if backup.status.phase else "Pending"
            by_phase[key] = by_phase.get(key, 0) + 1
        for name, count in sorted(by_phase.items()):
            counts.add_metric([*labels, name], float(count))
