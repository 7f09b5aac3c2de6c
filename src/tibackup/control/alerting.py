"""What a schedule's alerting metrics say, from the schedule and the Backups still there (pure).

Both runtimes export these, so one rule file (deploy/prometheus/) alerts on either:
- ``last_success``: completion time of the newest successful backup; ``0`` when it never succeeded,
  so "no success in 25 h" can fire for a schedule that never had one (with ``created``, 25 h after it
  was created). Retention never deletes the newest successful Backup, and the schedule's
  ``status.lastSuccessfulBackupTime`` remembers it besides.
- ``last_ok``: 1 when the newest finished backup succeeded, 0 when it failed, None before any finished.
  A failed Backup pruned by retention still counts: when the schedule's newest Backup
  (``status.lastBackup``) is gone and was not its last success, it failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tibackup.resources import Backup, BackupSchedule, Phase
from tibackup.resources.meta import utc

FINISHED = (Phase.COMPLETE, Phase.FAILED, Phase.INVALID)


@dataclass(frozen=True)
class ScheduleSignals:
    created: float
    last_success: float
    last_ok: float | None
    paused: bool


def started(backup: Backup) -> float:
    """When the backup started (its creation before that), as Unix time: the order of a schedule's runs."""
    moment = backup.status.time_started or backup.metadata.creation_timestamp
    return utc(moment).timestamp() if moment else 0.0


def schedule_signals(schedule: BackupSchedule, backups: list[Backup]) -> ScheduleSignals:
    status = schedule.status
    created = schedule.metadata.creation_timestamp
    finished = sorted((b for b in backups if b.status.phase in FINISHED), key=started)
    complete = [b.status.time_completed for b in finished if b.status.phase == Phase.COMPLETE]
    times = [utc(t).timestamp() for t in [*complete, status.last_successful_backup_time] if t is not None]
    present = {b.metadata.name for b in backups}
    last_ok: float | None = None
    if status.last_backup and status.last_backup not in present:
        last_ok = 1.0 if status.last_backup == status.last_successful_backup else 0.0
    elif finished:
        last_ok = 1.0 if finished[-1].status.phase == Phase.COMPLETE else 0.0
    return ScheduleSignals(
        created=utc(created).timestamp() if created else 0.0,
        last_success=max(times, default=0.0),
        last_ok=last_ok,
        paused=bool(schedule.spec.pause),
    )
