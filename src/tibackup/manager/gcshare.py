"""One GC life time, several backups: who holds it raised, and what it must be (pure; docs/gc-life-time.md).

Every backup that manages the GC life time of a cluster *joins* before its dump and *leaves* after it,
whichever process runs it (an embedded controller, an operator's Job, both at once). What they share
is the database itself: tibackup's rows in ``mysql.tidb`` (``dump/tidb.py`` reads and writes them in
one transaction that first locks the ``tikv_gc_life_time`` row):

- ``tibackup_gc_original``: the value before the first holder raised it;
- ``tibackup_gc_holder_<uid>``: one row per backup that holds it (JSON: target, since, backup, host).

The rule, applied at every join and leave: while holders remain, ``tikv_gc_life_time`` is
``max(original, their targets)`` — never lower than what a remaining holder needs; when the last one
leaves, the original comes back and the rows go. A holder whose process vanished without leaving is
dropped only once it cannot protect anything any more: its dump started at ``since`` at the earliest,
so once ``since + target`` lies behind the server's clock (with ``STALE_MARGIN`` for clock skew) its
snapshot is older than even its own target keeps. Until then it keeps the value raised: the failure
mode is "raised longer", never "lowered under a running backup".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tibackup.dump import tidb
from tibackup.errors import DatabaseError, InvalidSpecError
from tibackup.resources import parse_duration

STALE_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class Holder:
    """One backup holding the GC life time raised; ``target`` empty when its row is unreadable."""

    target: str
    since: str = ""  # RFC 3339, the server's clock when it joined
    backup: str = ""  # namespace/name
    host: str = ""  # the machine (or Pod) that runs it

    def text(self) -> str:
        return json.dumps(
            {"target": self.target, "since": self.since, "backup": self.backup, "host": self.host},
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str) -> Holder:
        try:
            doc = json.loads(text)
            return cls(str(doc["target"]), str(doc.get("since", "")), str(doc.get("backup", "")),
                       str(doc.get("host", "")))  # fmt: skip
        except (ValueError, TypeError, KeyError):
            return cls("")


@dataclass(frozen=True)
class Shared:
    """tibackup's rows of ``mysql.tidb``: the original value (None: no row) and the holders by uid."""

    original: str | None = None
    holders: dict[str, Holder] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """What one join or leave writes: the new value, the rows after it, the stale holders it dropped."""

    value: str
    after: Shared
    expired: dict[str, Holder] = field(default_factory=dict)


def read_rows(rows: dict[str, tuple[str, str]]) -> Shared:
    """The rows ``tidb.lock_gc_share`` returns (name → (value, comment)) as a ``Shared``."""
    original = rows[tidb.GC_ORIGINAL][0] if tidb.GC_ORIGINAL in rows else None
    holders = {
        name.removeprefix(tidb.GC_HOLDER_PREFIX): Holder.parse(value)
        for name, (value, _) in rows.items()
        if name.startswith(tidb.GC_HOLDER_PREFIX)
    }
    return Shared(original, holders)


def row_changes(before: Shared, after: Shared) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The rows to insert or update (name → (value, comment)) and the names to delete."""
    upserts: dict[str, tuple[str, str]] = {}
    deletes = [tidb.GC_HOLDER_PREFIX + uid for uid in before.holders if uid not in after.holders]
    if after.original is None:
        if before.original is not None:
            deletes.append(tidb.GC_ORIGINAL)
    elif after.original != before.original:
        upserts[tidb.GC_ORIGINAL] = (after.original, ORIGINAL_COMMENT)
    for uid, holder in after.holders.items():
        if before.holders.get(uid) != holder:
            upserts[tidb.GC_HOLDER_PREFIX + uid] = (holder.text(), holder_comment(uid, holder))
    return upserts, deletes


ORIGINAL_COMMENT = (
    "tibackup: tikv_gc_life_time before running backups raised it; set back when the last "
    "tibackup_gc_holder_* row goes (docs/gc-life-time.md)"
)


def holder_comment(uid: str, holder: Holder) -> str:
    return (
        f"tibackup: Backup {holder.backup} holds tikv_gc_life_time >= {holder.target} while it reads; "
        f"only if that Backup is gone: DELETE FROM mysql.tidb WHERE VARIABLE_NAME = "
        f"'{tidb.GC_HOLDER_PREFIX}{uid}' (docs/gc-life-time.md)"
    )


def join(
    shared: Shared, current: str, uid: str, holder: Holder, now: datetime, legacy: str | None = None
) -> Change:
    """``uid`` starts holding the value at ``holder.target`` or more (joining again refreshes it).

    No holders yet: the current value is the original. ``legacy``: the value an earlier run of this
    Backup (older, unshared record format) raised from and never restored — the true original."""
    original = legacy or (current if shared.original is None else shared.original)
    holders, expired = _drop_stale(shared.holders, now, keep=uid)
    holders[uid] = holder
    after = Shared(original, holders)
    return Change(_held(after, current), after, expired)


def leave(shared: Shared, current: str, uid: str, now: datetime, legacy: str | None = None) -> Change:
    """``uid`` stops holding it: the value others still need, or the original when none is left.

    Leaving twice (or without having joined) changes nothing that others hold. ``legacy``: as for
    ``join``, the original an old-format record holds."""
    holders, expired = _drop_stale(shared.holders, now, keep=uid)
    holders.pop(uid, None)
    original = legacy or shared.original
    if not holders:
        return Change(original if original is not None else current, Shared(), expired)
    after = Shared(original, holders)
    return Change(_held(after, current), after, expired)


@dataclass(frozen=True)
class Alone:
    """What a backup whose account cannot add or remove rows (no INSERT, DELETE on ``mysql.tidb``)
    writes, with UPDATE only: the value and, when it changes, ``tibackup_gc_original``."""

    value: str
    original: str | None = None  # the new tibackup_gc_original; None: left as it is
    restore_to: str | None = None  # join: what its end sets back (recorded); None: nothing changed
    others: dict[str, Holder] = field(default_factory=dict)  # the sharing backups seen (not stale)


def alone_join(shared: Shared, current: str, target: str, now: datetime) -> Alone:
    """A backup that raises the value on its own (as before sharing), made safer by what it can read.

    Sharing backups hold it: their original is the true one (what this one sets back), and when this
    target is longer it becomes their original, so the last of them to leave does not lower the value
    under this one. Nobody holds it: raised when shorter, the current value recorded; not raised,
    nothing recorded and nothing set back (the old rule)."""
    others = _live(shared.holders, now)
    if others and shared.original is not None:
        bumped = target if seconds(target) > seconds(shared.original) else None
        value = target if seconds(target) > seconds(current) else current
        changed = bumped is not None or value != current
        return Alone(value, bumped, shared.original if changed else None, others)
    if seconds(target) <= seconds(current):
        return Alone(current, None, None, others)
    return Alone(target, None, current, others)


def alone_leave(shared: Shared, current: str, original: str, raised_to: str, now: datetime) -> Alone:
    """The end of a backup that raised the value on its own from ``original`` to ``raised_to``.

    A ``tibackup_gc_original`` equal to ``raised_to`` is this backup's doing (its raise, taken as the
    original by a backup that joined later, or its own bump): it becomes ``original`` again. Sharing
    backups still hold it: ``max(their original, their targets)``, never lower; nobody: ``original``."""
    others = _live(shared.holders, now)
    new = None
    if shared.original is not None and same(shared.original, raised_to) and not same(original, raised_to):
        new = original
    if others and shared.original is not None:
        return Alone(_held(Shared(new or shared.original, others), current), new, None, others)
    return Alone(original, new, None, others)


def _live(holders: dict[str, Holder], now: datetime) -> dict[str, Holder]:
    return {uid: holder for uid, holder in holders.items() if not stale(holder, now)}


def same(one: str, other: str) -> bool:
    """Two GC life times that mean the same duration ('72h', '72h0m0s')."""
    try:
        return seconds(one) == seconds(other)
    except DatabaseError:  # a value that is not a duration: only the text can say
        return one == other


def _held(shared: Shared, current: str) -> str:
    """max(original, the holders' targets); an unreadable holder row keeps at least the current value."""
    candidates = [shared.original or current]
    for holder in shared.holders.values():
        candidates.append(holder.target if holder.target else current)
    best = candidates[0]
    for value in candidates[1:]:
        if seconds(value) > seconds(best):
            best = value
    return best


def _drop_stale(
    holders: dict[str, Holder], now: datetime, keep: str
) -> tuple[dict[str, Holder], dict[str, Holder]]:
    kept, expired = {}, {}
    for uid, holder in holders.items():
        if uid != keep and stale(holder, now):
            expired[uid] = holder
        else:
            kept[uid] = holder
    return kept, expired


def stale(holder: Holder, now: datetime) -> bool:
    """Whether the holder's snapshot is older than its own target keeps (plus the margin): dropping it
    cannot lower the value under anything it still protects. Unreadable rows are never stale."""
    if not holder.target or not holder.since:
        return False
    try:
        since = datetime.fromisoformat(holder.since.replace("Z", "+00:00"))
        target = timedelta(seconds=seconds(holder.target))
    except (ValueError, DatabaseError):
        return False
    return since + target + STALE_MARGIN < now


def seconds(value: str) -> float:
    """A GC life time ('10m0s', '72h', '1h30m') in seconds; a clear error when it is not a duration."""
    try:
        return tidb.parse_go_duration(value)
    except ValueError:
        pass
    try:
        return parse_duration(value, "tikv_gc_life_time").total_seconds()
    except InvalidSpecError:
        raise DatabaseError(
            f"mysql.tidb holds tikv_gc_life_time = {value!r}, which is not a duration: set it to e.g. '10m0s'",
            reason="GCLifeTimeUnreadable",
        ) from None
