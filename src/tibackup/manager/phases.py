"""The status of a Backup as it moves through its phases: pure functions, a status in, a new one out.

``Scheduled → Prepare → Running → Complete | Failed``, or ``Invalid`` for a spec that can never work.
Each transition sets the condition of that type (one per type, ``lastTransitionTime``, a CamelCase
reason and a one-line message) and the phase with it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tibackup.resources import (
    BackupStatus,
    ConditionType,
    Phase,
    RunStatus,
    drop_condition,
    format_duration,
    human_size_si,
    set_condition,
    set_side_condition,
)
from tibackup.resources.status import S  # a Backup's status or a Restore's: each comes back as it went in


def one_line(text: str, limit: int = 1000) -> str:
    """Messages go into status and events: one line, bounded."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def time_taken(started: datetime, finished: datetime) -> str:
    """Go's duration text, to the second (``1m5s``); under a second, to the millisecond (``350ms``)."""
    taken = max(finished - started, timedelta(0))
    if taken >= timedelta(seconds=1):
        taken = timedelta(seconds=round(taken.total_seconds()))
    else:
        taken = timedelta(milliseconds=round(taken.total_seconds() * 1000))
    return format_duration(taken)


def to_invalid(status: S, reason: str, message: str, now: datetime) -> S:
    return set_condition(status, Phase.INVALID, reason, one_line(message), now)


def to_prepare(status: S, message: str, now: datetime) -> S:
    return set_condition(status, Phase.PREPARE, "Preparing", one_line(message), now)


def to_running(status: S, backup_path: str, message: str, now: datetime) -> S:
    """``Running``, with where the files go and when it started; a previous outcome is cleared (and a
    Backup's claim: ``backupPath`` now names its folder)."""
    new = drop_condition(
        set_condition(status, Phase.RUNNING, "Running", one_line(message), now), ConditionType.VERIFIED
    )
    update: dict[str, object] = {
        "backup_path": backup_path,
        "time_started": now,
        "time_completed": None,
        "time_taken": None,
        "backup_size": None,
        "backup_size_readable": None,
        "commit_ts": None,
    }
    if isinstance(new, BackupStatus):  # a Restore's status has no claimPath
        update["claim_path"] = None
    return new.model_copy(update=update)


def to_verified(status: S, size: int, commit_ts: str, message: str, now: datetime) -> S:
    """Still ``Running``, but the folder is verified complete: the condition ``Verified`` (its message is
    the ``Complete`` message to come) with ``backupSize`` and ``commitTs``. What is left (clearing the
    staging folder, restoring the GC life time) cannot make the backup incomplete, so a run stopped from
    here on ends ``Complete`` (``verified``)."""
    new = set_side_condition(status, ConditionType.VERIFIED, "Verified", one_line(message), now)
    return new.model_copy(
        update={
            "backup_size": size,
            "backup_size_readable": human_size_si(size),
            "commit_ts": commit_ts or None,
        }
    )


def verified(status: RunStatus) -> bool:
    """Whether this run's folder was verified complete (``to_verified``) and ``Complete`` not recorded:
    still ``Running``, or ``Failed`` by the operator because the Job died (the run itself never records
    ``Failed`` after verifying; a re-run drops the condition)."""
    return (
        status.phase in (Phase.RUNNING, Phase.FAILED) and status.condition(ConditionType.VERIFIED) is not None
    )


def to_complete(status: S, size: int, commit_ts: str, message: str, now: datetime) -> S:
    new = set_condition(status, Phase.COMPLETE, "Complete", one_line(message), now)
    started = status.time_started or now
    return new.model_copy(
        update={
            "backup_size": size,
            "backup_size_readable": human_size_si(size),
            "commit_ts": commit_ts or None,
            "time_completed": now,
            "time_taken": time_taken(started, now),
        }
    )


def to_failed(status: S, reason: str, message: str, now: datetime) -> S:
    """``Failed``: the reason is CamelCase, the message says what happened and what to do."""
    return set_condition(status, Phase.FAILED, reason or "Failed", one_line(message), now)
