"""Admission: whether a Backup or BackupSchedule can ever run, decided when it is first seen.

The checks are the backup manager's own (``run.validate``: the resource rules, the mode annotation,
Dumpling's parser for ``dumpling.options``, the table filter, the rclone options), so ``apply``, the
operator and the run itself always agree. A schedule is checked as the Backup it would create, so a
template that can never run is refused before its first tick.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tibackup.control.naming import backup_from_schedule
from tibackup.control.schedule import validate_backup_schedule
from tibackup.errors import InvalidSpecError
from tibackup.manager.run import validate
from tibackup.resources import Backup, BackupSchedule, Restore

# Any tick names the Backups alike in length; a fixed one keeps the check pure.
_SAMPLE_TICK = datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)


def admit(resource: Backup | BackupSchedule | Restore) -> None:
    """Raise InvalidSpecError naming the first field that makes ``resource`` unable to ever run."""
    if isinstance(resource, Backup):
        validate(resource)
        return
    if isinstance(resource, Restore):
        from tibackup.manager.restore_run import validate as validate_restore

        validate_restore(resource)
        return
    validate_backup_schedule(resource)
    try:
        validate(backup_from_schedule(resource, _SAMPLE_TICK))
    except InvalidSpecError as exc:
        field = exc.field
        if field.startswith("spec."):
            field = "spec.backupTemplate." + field.removeprefix("spec.")
        raise InvalidSpecError(field, exc.message.split(": ", 1)[-1]) from None


__all__ = ["admit"]
