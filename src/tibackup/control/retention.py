"""Which Backups of a schedule have expired: ``maxReservedTime`` or ``maxBackups``, never the last good one.

Rules (TiDB Operator's, plus the safety it lacks):
- ``maxReservedTime`` wins over ``maxBackups`` when both are set; ``maxBackups: 0`` keeps everything;
- the newest successful (Complete) backup is never deleted, whatever its age;
- ``maxBackups`` counts every backup (Complete, Failed, Invalid and unfinished alike, as TiDB Operator
  does), so a schedule that keeps failing cannot pile up Failed Backups; those past the count go, oldest
  first, except the two this protects;
- a failed or invalid backup is deleted once a newer successful one exists;
- an unfinished backup is never deleted (it still counts), and one already being deleted is neither
  counted nor listed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tibackup.resources.duration import parse_positive_duration
from tibackup.resources.meta import utc
from tibackup.resources.status import DELETING_PHASES, FINISHED_PHASES, Phase


@dataclass(frozen=True)
class BackupRecord:
    """What retention needs to know of one Backup."""

    name: str
    created: datetime  # creationTimestamp (or the scheduled time)
    phase: Phase | str | None  # None or "" for a Backup that has not started
    completed: datetime | None = None


def expired_backups(
    backups: Sequence[BackupRecord],
    max_backups: int | None,
    max_reserved_time: timedelta | str | None,
    now: datetime,
) -> list[str]:
    """Names of the Backups to delete now, oldest first."""
    if isinstance(max_reserved_time, str):
        max_reserved_time = parse_positive_duration(max_reserved_time, "spec.maxReservedTime")
    if max_reserved_time is None and not max_backups:
        return []
    live = [b for b in backups if b.phase not in DELETING_PHASES]
    ordered = sorted(live, key=lambda b: (utc(b.created), b.name), reverse=True)  # newest first
    successes = [b for b in ordered if b.phase == Phase.COMPLETE]
    newest_success = successes[0] if successes else None

    expired: set[str] = set()
    if max_reserved_time is not None:
        cutoff = utc(now) - max_reserved_time
        expired.update(b.name for b in ordered if _finished(b) and utc(b.created) < cutoff)
    elif max_backups:
        expired.update(b.name for b in ordered[max_backups:] if _finished(b))
    if newest_success is not None:
        newest = utc(newest_success.created)
        expired.update(
            b.name for b in ordered if b.phase in (Phase.FAILED, Phase.INVALID) and utc(b.created) < newest
        )
        expired.discard(newest_success.name)
    return [b.name for b in reversed(ordered) if b.name in expired]


def _finished(backup: BackupRecord) -> bool:
    return backup.phase in FINISHED_PHASES
