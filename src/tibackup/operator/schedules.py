"""One look at a BackupSchedule: ask the control plane what to do now, do it, record it.

The decisions are ``control.schedule.decide`` and ``control.retention.expired_backups``, the same the
embedded runtime uses; this module only reads the schedule's Backups, creates and deletes Backup
objects and patches the schedule's status.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tibackup.control.naming import LABEL_SCHEDULE, backup_from_schedule
from tibackup.control.retention import BackupRecord, expired_backups
from tibackup.control.schedule import Action, ScheduleState, decide
from tibackup.errors import InvalidSpecError
from tibackup.manager.admission import admit
from tibackup.operator import jobs
from tibackup.operator.kube import BACKUPS, SCHEDULES, KubeApi
from tibackup.operator.metrics import ScheduleMetrics
from tibackup.resources import FINISHED_PHASES, Backup, BackupSchedule, Phase, parse_resource, to_dict
from tibackup.resources.upstream import ignored_fields

log = logging.getLogger(__name__)
COMPONENT = "tibackup-operator"


class ScheduleController:
    def __init__(self, api: KubeApi, metrics: ScheduleMetrics) -> None:
        self.api = api
        self.metrics = metrics
        self._last_error: dict[tuple[str, str], str] = {}  # one event per new problem, not per tick
        self._warned: set[tuple[str, str]] = set()

    def tick(self, body: dict[str, Any], now: datetime) -> None:
        meta = body.get("metadata") or {}
        ns, name = meta.get("namespace") or "default", str(meta.get("name"))
        if meta.get("deletionTimestamp"):
            return
        try:
            schedule = parse_resource(body)
            if not isinstance(schedule, BackupSchedule):
                return
            admit(schedule)  # as apply does: a template that can never run creates no Backups
        except InvalidSpecError as exc:
            if self._last_error.get((ns, name)) != exc.message:
                self._last_error[(ns, name)] = exc.message
                self.event(body, "Warning", exc.reason, exc.message, now)
            return
        self._last_error.pop((ns, name), None)
        if (ns, name) not in self._warned:  # once per schedule and operator start, not per tick
            self._warned.add((ns, name))
            for warning in ignored_fields(schedule, operator=True):
                self.event(body, "Warning", "IgnoredField", warning, now)

        backups = self._backups(ns, name)
        running = any(
            b.status.phase not in FINISHED_PHASES and not b.metadata.deletion_timestamp for b in backups
        )
        state = ScheduleState.of(schedule, last_backup_running=running, created=now)
        decision = decide(schedule, state, now)
        status = schedule.status
        made: list[Backup] = []  # this tick's new Backup, for the metrics (status.lastBackup names it)
        if decision.action == Action.CREATE and decision.tick is not None:
            backup = backup_from_schedule(schedule, decision.tick)
            created = self.api.create(BACKUPS, ns, to_dict(backup))
            made.append(backup)
            status.last_backup = backup.metadata.name
            status.last_backup_time = decision.tick
            if created is not None:
                self.event(body, "Normal", "BackupCreated", f"created Backup {backup.metadata.name}", now)
        elif decision.action in (Action.SKIP, Action.PAUSED) and decision.tick is not None:
            status.last_skipped = decision.tick
            status.last_skipped_reason = decision.reason
            self.metrics.skipped_tick(ns, name)
            self.event(
                body, "Normal", "BackupSkipped", f"{decision.tick:%Y-%m-%dT%H:%M:%SZ}: {decision.reason}", now
            )
        status.next_backup_time = decision.next_backup_time

        good = [b for b in backups if b.status.phase == Phase.COMPLETE]
        if good:
            newest = max(good, key=_created)
            status.last_successful_backup = newest.metadata.name
            status.last_successful_backup_time = newest.status.time_completed
        self._prune(body, schedule, backups, now)
        patch = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        if decision.next_backup_time is None:
            patch["status"]["nextBackupTime"] = None  # paused: no next time (null removes it)
        self.api.patch(SCHEDULES, ns, name, patch, subresource="status")
        self.metrics.observe(schedule, [*backups, *made])

    def _backups(self, ns: str, schedule: str) -> list[Backup]:
        found: list[Backup] = []
        for item in self.api.list(BACKUPS, ns, {LABEL_SCHEDULE: schedule}):
            try:
                found.append(jobs.backup_of(item))
            except InvalidSpecError:
                log.warning("Backup %s/%s does not parse; retention ignores it", ns, item["metadata"]["name"])
        return found

    def _prune(
        self, body: dict[str, Any], schedule: BackupSchedule, backups: list[Backup], now: datetime
    ) -> None:
        spec = schedule.spec
        alive = [b for b in backups if not b.metadata.deletion_timestamp]
        records = [
            BackupRecord(
                name=b.metadata.name,
                created=_created(b),
                phase=b.status.phase,
                completed=b.status.time_completed,
            )
            for b in alive
        ]
        for name in expired_backups(records, spec.max_backups, spec.max_reserved_time, now):
            if self.api.delete(BACKUPS, schedule.metadata.namespace or "default", name):
                self.event(body, "Normal", "BackupPruned", f"deleted expired Backup {name}", now)

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None:
        self.api.event(involved, type_, reason, message, now, COMPONENT)


def _created(backup: Backup) -> datetime:
    from tibackup.resources import utc

    moment = backup.metadata.creation_timestamp or backup.status.time_started
    if moment is None:
        return utc(datetime.min.replace(year=1970))
    return moment
