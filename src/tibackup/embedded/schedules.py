"""One pass of the controller over one BackupSchedule: ask the control plane, do what it says, record it.

Status fields written (see ``control.schedule``): ``lastBackup``/``lastBackupTime`` when a Backup is
created (the time is the scheduled tick); ``lastSkipped``/``lastSkippedReason`` when a due tick is not
taken (overlap or pause); ``nextBackupTime`` (none while paused); ``lastSuccessfulBackup``(+``Time``) from
the newest Complete Backup; ``allBackupCleanTime`` when a retention pass deleted every expired Backup.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tibackup.control.naming import backup_from_schedule
from tibackup.control.retention import BackupRecord, expired_backups
from tibackup.control.schedule import Action, ScheduleState, decide
from tibackup.embedded import lifecycle
from tibackup.embedded.metrics import SkipCounter
from tibackup.embedded.store import ConflictError, Store
from tibackup.errors import InvalidSpecError
from tibackup.resources import DELETING_PHASES, FINISHED_PHASES, Backup, BackupSchedule, Phase
from tibackup.resources.meta import utc

log = logging.getLogger("tibackup.controller")


def reconcile_schedule(store: Store, schedule: BackupSchedule, now: datetime, skipped: SkipCounter) -> None:
    ns, name = lifecycle.namespace_of(schedule), schedule.metadata.name
    ref = f"schedule {ns}/{name}"
    backups = lifecycle.owned_backups(store, schedule)
    unfinished = [
        b for b in backups if b.status.phase not in FINISHED_PHASES and b.status.phase not in DELETING_PHASES
    ]
    status = schedule.status.model_copy()
    created = schedule.metadata.creation_timestamp or now
    try:
        decision = decide(schedule, ScheduleState.of(schedule, bool(unfinished), created), now)
    except InvalidSpecError as exc:
        log.error("%s: %s", ref, exc.message)
        store.add_event(schedule, "Warning", "InvalidSchedule", exc.message)
        return
    if decision.action is Action.CREATE:
        assert decision.tick is not None
        backup = backup_from_schedule(schedule, decision.tick)
        try:
            store.create(backup, now)
            log.info("%s: created backup %s", ref, backup.metadata.name)
            store.add_event(schedule, "Normal", "BackupCreated", f"created backup {backup.metadata.name}")
        except ConflictError:
            log.info("%s: backup %s exists already", ref, backup.metadata.name)
        status.last_backup = backup.metadata.name
        status.last_backup_time = decision.tick
    elif decision.action in (Action.SKIP, Action.PAUSED) and decision.tick is not None:
        status.last_skipped = decision.tick
        status.last_skipped_reason = decision.reason
        skipped.add(ns, name)
        log.info("%s: skipped the tick of %s: %s", ref, utc(decision.tick).isoformat(), decision.reason)
        store.add_event(schedule, "Normal", "BackupSkipped", decision.reason or "skipped")
    status.next_backup_time = decision.next_backup_time

    newest_ok = _newest_complete(backups)
    if newest_ok is not None:
        status.last_successful_backup = newest_ok.metadata.name
        status.last_successful_backup_time = newest_ok.status.time_completed

    if _apply_retention(store, schedule, backups, now, ref):
        status.all_backup_clean_time = now
    if status != schedule.status:
        store.update_status(schedule.model_copy(update={"status": status}))


def _newest_complete(backups: list[Backup]) -> Backup | None:
    complete = [b for b in backups if b.status.phase == Phase.COMPLETE]
    if not complete:
        return None
    return max(
        complete, key=lambda b: utc(b.status.time_completed or b.metadata.creation_timestamp or datetime.min)
    )


def _apply_retention(
    store: Store, schedule: BackupSchedule, backups: list[Backup], now: datetime, ref: str
) -> bool:
    """Delete the expired Backups (their data per cleanPolicy); True when some were deleted and none failed."""
    spec = schedule.spec
    records = [
        BackupRecord(
            name=b.metadata.name,
            created=b.metadata.creation_timestamp or now,
            phase=b.status.phase,
            completed=b.status.time_completed,
        )
        for b in backups
        if b.metadata.deletion_timestamp is None
    ]
    try:
        expired = expired_backups(records, spec.max_backups, spec.max_reserved_time, now)
    except InvalidSpecError as exc:
        log.error("%s: %s", ref, exc.message)
        return False
    by_name = {b.metadata.name: b for b in backups}
    failed = 0
    for name in expired:
        rule = (
            f"maxReservedTime {spec.max_reserved_time}"
            if spec.max_reserved_time
            else f"maxBackups {spec.max_backups}"
        )
        log.info(
            "retention: deleting backup %s/%s of %s (%s)", lifecycle.namespace_of(schedule), name, ref, rule
        )
        store.add_event(schedule, "Normal", "BackupDeleted", f"retention ({rule}) deleted backup {name}")
        if lifecycle.delete_backup(store, by_name[name]) is not None:
            failed += 1
            log.warning("retention: backup %s could not be cleaned; it stays (CleanFailed)", name)
    return bool(expired) and not failed
