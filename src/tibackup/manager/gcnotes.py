"""What a change of the GC life time tells: the events of one join or leave, and the condition of a
release that failed (``GCLifeTimeRestorePending``). Pure: the outcome in, the words out; gc.py does the
work on the database and keeps the records.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Protocol

from tibackup.manager import gcshare
from tibackup.manager.gcshare import Holder
from tibackup.resources import BackupStatus, ConditionType, drop_condition, set_side_condition

PENDING = ConditionType.GC_LIFE_TIME_RESTORE_PENDING
PENDING_REASON = "GCLifeTimeNotRestored"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One join or leave: the value before and after, the other holders left, the stale ones dropped."""

    joined: bool
    before: str
    after: str
    original: str | None  # the shared original after the change (None once the last holder left;
    # a lone join: the tibackup_gc_original it set for the sharers, None when it left theirs as it was)
    others: dict[str, Holder]
    expired: dict[str, Holder]
    not_shared: str = ""  # why this backup raised it on its own (its account cannot add holder rows)


def mark_pending(status: BackupStatus, record: dict[str, Any], error: str, now: datetime) -> BackupStatus:
    """``status`` with the ``GCLifeTimeRestorePending`` condition: the value to restore and the last error."""
    value, raised = record.get("value", "its old value"), record.get("raisedTo", "a longer value")
    message = (
        f"tikv_gc_life_time is still held at {raised} or more for this backup; releasing it (back to "
        f"{value} unless other running backups hold it) failed: {error}; retried until the database "
        "answers (by hand, only when no backup of this cluster runs: UPDATE mysql.tidb SET "
        f"VARIABLE_VALUE='{value}' WHERE VARIABLE_NAME='tikv_gc_life_time'; DELETE FROM mysql.tidb WHERE "
        "VARIABLE_NAME LIKE 'tibackup_gc_%')"
    )
    return set_side_condition(status, PENDING, PENDING_REASON, message, now)


def clear_pending(status: BackupStatus) -> BackupStatus:
    return drop_condition(status, PENDING)


def notes(outcome: Outcome | None) -> list[tuple[bool, str, str]]:
    """The events one join or leave deserves: (warning?, reason, message)."""
    if outcome is None:
        return []
    out: list[tuple[bool, str, str]] = [
        (True, "GCLifeTimeHolderExpired",
         f"dropped {_who(uid, h)} from the holders of tikv_gc_life_time: it joined at {h.since} with "
         f"target {h.target}, so its snapshot is older than that keeps; its backup process is gone")
        for uid, h in outcome.expired.items()
    ]  # fmt: skip
    if outcome.not_shared:
        out.append((True, "GCLifeTimeNotShared", outcome.not_shared))
    changed = not gcshare.same(outcome.before, outcome.after)
    others = ", ".join(_who(uid, h) for uid, h in sorted(outcome.others.items()))
    if outcome.joined and changed:
        out.append(
            (False, "GCLifeTimeRaised", f"tikv_gc_life_time raised from {outcome.before} to {outcome.after}")
        )
    if outcome.others and outcome.joined and outcome.not_shared:  # it sees sharers but holds no row
        out.append((False, "GCLifeTimeSharedByOthers", _lone_among_sharers(outcome, changed, others)))
    elif outcome.others and outcome.joined:
        out.append((False, "GCLifeTimeShared",
                    f"tikv_gc_life_time {outcome.after} is also held by {len(outcome.others)} other "
                    f"backup(s): {others}"))  # fmt: skip
    elif outcome.others:
        kept = f"set to {outcome.after} (from {outcome.before})" if changed else f"kept at {outcome.after}"
        out.append((False, "GCLifeTimeKept",
                    f"tikv_gc_life_time {kept}, what {len(outcome.others)} other running backup(s) still "
                    f"need: {others}"))  # fmt: skip
    elif not outcome.joined and changed:
        out.append((False, "GCLifeTimeRestored", f"tikv_gc_life_time restored to {outcome.after}"))
    return out


def _lone_among_sharers(outcome: Outcome, changed: bool, others: str) -> str:
    how = "raised to {} by this backup on its own" if changed else "{}, not raised by it"
    bumped = ""
    if outcome.original:  # its target became the sharers' original
        bumped = f"; {outcome.original} is now their tikv_gc_life_time original, so the last of them to "
        bumped += "leave sets it back to no less than this backup's target"
    return (
        f"tikv_gc_life_time is {how.format(outcome.after)}; this backup holds no row among its holders, "
        f"while {len(outcome.others)} other backup(s) share it: {others}{bumped}"
    )


class Teller(Protocol):
    def info(self, reason: str, message: str) -> None: ...

    def warning(self, reason: str, message: str) -> None: ...


def tell(report: Teller, outcome: Outcome | None) -> None:
    """Record the events of one join or leave on the Backup."""
    for warn, reason, message in notes(outcome):
        (report.warning if warn else report.info)(reason, message)


def _who(uid: str, holder: Holder) -> str:
    return (
        f"{holder.backup or 'an unreadable holder row'} (uid {uid}, target {holder.target or '?'}, "
        f"since {holder.since or '?'}, on {holder.host or '?'})"
    )
