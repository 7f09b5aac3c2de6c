"""Prometheus metrics per BackupSchedule, served by the operator on its metrics port.

One registry per operator instance (tests run several operators in one process). The values are
recomputed from the schedule and its Backups at every schedule tick (control.alerting), so they are right
after a restart too; the alert rules of deploy/prometheus/ read them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from tibackup.control.alerting import schedule_signals
from tibackup.control.alerting import started as _started
from tibackup.resources import Backup, BackupSchedule, Phase

_LABELS = ("namespace", "schedule")
STATUS_VALUES = {Phase.COMPLETE: 1.0, Phase.FAILED: 0.0, Phase.INVALID: 0.0}


class ScheduleMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.up = Gauge(
            "tibackup_controller_up", "1 while the controller runs (absent: it is gone).", registry=r
        )
        self.up.set(1)
        self.last_pass = Gauge(
            "tibackup_controller_last_pass_timestamp_seconds",
            "When the controller last looked at a schedule (Unix time).", registry=r,
        )  # fmt: skip
        self.created = Gauge(
            "tibackup_schedule_created_timestamp_seconds",
            "When the schedule was created (Unix time).", _LABELS, registry=r,
        )  # fmt: skip
        self.paused = Gauge("tibackup_schedule_paused", "1 when spec.pause is true.", _LABELS, registry=r)
        self.last_success = Gauge(
            "tibackup_schedule_last_success_timestamp_seconds",
            "Completion time of the schedule's newest successful backup (Unix time); 0: none yet.",
            _LABELS, registry=r,
        )  # fmt: skip
        self.last_status = Gauge(
            "tibackup_schedule_last_backup_success",
            "1 when the schedule's newest finished backup succeeded, 0 when it failed.",
            _LABELS, registry=r,
        )  # fmt: skip
        self.duration = Gauge(
            "tibackup_schedule_last_backup_duration_seconds",
            "How long the schedule's newest successful backup took.",
            _LABELS, registry=r,
        )  # fmt: skip
        self.size = Gauge(
            "tibackup_schedule_last_backup_size_bytes",
            "Size of the schedule's newest successful backup.",
            _LABELS, registry=r,
        )  # fmt: skip
        self.skipped = Counter(
            "tibackup_schedule_skipped_ticks",
            "Scheduled times not taken (previous backup unfinished, or the schedule paused).",
            _LABELS, registry=r,
        )  # fmt: skip
        self.backups = Gauge(
            "tibackup_schedule_backups",
            "Backups of the schedule by phase.",
            (*_LABELS, "phase"), registry=r,
        )  # fmt: skip

    def observe(self, schedule_: BackupSchedule, backups: Sequence[Backup]) -> None:
        """Set the gauges from the schedule (its status after this tick) and its Backups."""
        namespace, schedule = schedule_.metadata.namespace or "default", schedule_.metadata.name
        signals = schedule_signals(schedule_, list(backups))
        self.last_pass.set(time.time())
        self.created.labels(namespace, schedule).set(signals.created)
        self.paused.labels(namespace, schedule).set(1.0 if signals.paused else 0.0)
        self.last_success.labels(namespace, schedule).set(signals.last_success)
        if signals.last_ok is not None:
            self.last_status.labels(namespace, schedule).set(signals.last_ok)
        finished = [b for b in backups if b.status.phase in STATUS_VALUES]
        finished.sort(key=_started)
        good = [b for b in finished if b.status.phase == Phase.COMPLETE]
        if good:
            newest = good[-1].status
            if newest.time_completed is not None and newest.time_started is not None:
                taken = (newest.time_completed - newest.time_started).total_seconds()
                self.duration.labels(namespace, schedule).set(taken)
            if newest.backup_size is not None:
                self.size.labels(namespace, schedule).set(newest.backup_size)
        counts: dict[str, int] = {str(p): 0 for p in Phase}
        for backup in backups:
            if backup.status.phase:
                counts[str(backup.status.phase)] += 1
        for phase, count in counts.items():
            self.backups.labels(namespace, schedule, phase).set(count)

    def forget(self, namespace: str, schedule: str) -> None:
        """Drop a deleted schedule's series (else its old last success would alert forever)."""
        for metric in (self.created, self.paused, self.last_success, self.last_status, self.duration,
                       self.size, self.skipped):  # fmt: skip
            with contextlib.suppress(KeyError):
                metric.remove(namespace, schedule)
        for phase in Phase:
            with contextlib.suppress(KeyError):
                self.backups.remove(namespace, schedule, str(phase))

    def skipped_tick(self, namespace: str, schedule: str) -> None:
        self.skipped.labels(namespace, schedule).inc()
