"""TiKV's GC life time, raised while backups read and restored when the last one ends (SPEC §3).

TiDB garbage-collects old row versions after ``tikv_gc_life_time`` (a row of ``mysql.tidb``); a dump
that reads one snapshot for longer than that fails. Several Backups of one cluster may run at once (in
one embedded controller, in the operator's Jobs, in both), so none of them simply raises and restores
the value: each *joins* the holders before its dump and *leaves* after it (``gcshare.py`` decides,
``dump/tidb.py`` runs the transaction on the database, the one place they all share). The value is
``max(original, the holders' targets)`` while any holder remains and the original once the last one
left (docs/gc-life-time.md).

Each Backup also records, through its runtime and BEFORE it joins, that it joined (so that a killed
backup can still leave, by ``recover_interrupted``). A leave that fails (the database is down, frozen
or refusing) keeps the record: the Backup shows the condition ``GCLifeTimeRestorePending`` and the
embedded controller and the operator retry (``recover.retry_gc_restore``) until the database answers.

On a server that is not TiDB the same is done when a ``mysql.tidb`` table with a ``tikv_gc_life_time``
row exists: a stand-in for TiDB's GC table, which is how the tests exercise this on MariaDB.

What a join or leave tells (its events, the pending condition) is ``gcnotes.py``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tibackup.dump import tidb
from tibackup.dump.config import Connection
from tibackup.dump.conn import DB, ServerInfo, ServerType
from tibackup.errors import DatabaseError, TibackupError
from tibackup.manager import gcshare
from tibackup.manager.gcnotes import Outcome
from tibackup.manager.gcshare import Change, Holder, Shared
from tibackup.manager.preflight import account_grants
from tibackup.manager.privileges import GC_TABLE
from tibackup.manager.runtime import BackupRuntime
from tibackup.record import evolve
from tibackup.resources import Backup, rfc3339

log = logging.getLogger("tibackup.manager")

# A restore must not wait the dump's read timeout (15m) on a frozen server: it is retried anyway.
RESTORE_READ_TIMEOUT = 60.0


def restore_connection(conn: Connection) -> Connection:
    """The dump's connection settings with the read timeout bounded for the restore's two statements."""
    timeout = min(conn.read_timeout or RESTORE_READ_TIMEOUT, RESTORE_READ_TIMEOUT)
    return evolve(conn, read_timeout=timeout)


def gc_applies(db: DB, server: ServerInfo) -> bool:
    """TiDB always; any other server only when it has the stand-in GC table with its row."""
    if server.type is ServerType.TIDB:
        return True
    if not tidb.gc_table_exists(db):
        return False
    try:
        tidb.read_gc_life_time(db)
    except DatabaseError as exc:
        if exc.code is None:  # the table has no tikv_gc_life_time row: nothing to manage
            return False
        raise
    return True


def raise_gc_life_time(db: DB, backup: Backup, runtime: BackupRuntime, target: str, now: datetime) -> Outcome:
    """Join the backups that hold ``tikv_gc_life_time``: raised to ``target`` when shorter, and never
    lowered under it by another backup's end until this one leaves (``restore_gc_life_time``).

    The runtime's record (``save_gc_record``) is saved BEFORE the join, so a killed backup still leaves.
    A record of the old format (an earlier run that raised it alone and never restored it) holds the
    true original: it becomes the shared original.

    An account without INSERT and DELETE on ``mysql.tidb`` cannot add and remove a holder row: the
    backup raises the value on its own, as before sharing (``_raise_alone``), and says so
    (``GCLifeTimeNotShared``). Privileges from roles, which ``SHOW GRANTS`` does not spell out, are
    found out by the join itself: it removes its own row before it adds it (``tidb.prove_gc_leave``),
    so a join that could not leave is refused (1142) and rolled back before it counts as shared.
    """
    gcshare.seconds(target)  # a clear error before anything changes
    account, missing = unshared_account(db)
    if account:
        return _raise_alone(db, backup, runtime, target, account, missing)
    try:
        return _join(db, backup, runtime, target, now)
    except DatabaseError as exc:
        if exc.code not in DENIED:  # roles that SHOW GRANTS does not spell out: found out here
            raise
        _rollback(db)
        return _raise_alone(db, backup, runtime, target, _current_user(db), _refused(exc.message))


def _join(db: DB, backup: Backup, runtime: BackupRuntime, target: str, now: datetime) -> Outcome:
    previous = runtime.load_gc_record(backup)
    legacy = _legacy_original(previous)
    uid = holder_key(backup)
    if previous is None or legacy is not None:
        runtime.save_gc_record(backup, {
            "variable": tidb.GC_VARIABLE,
            "holder": uid,
            "value": legacy or tidb.read_gc_life_time(db),
            "raisedTo": target,
            "host": db.conn_info.host,
            "port": db.conn_info.port,
            "savedAt": rfc3339(now),
        })  # fmt: skip
    me = f"{backup.metadata.namespace or 'default'}/{backup.metadata.name}"

    def decide(shared: Shared, current: str, clock: datetime) -> Change:
        holder = Holder(target, rfc3339(clock), me, socket.gethostname())
        return gcshare.join(shared, current, uid, holder, clock, legacy)

    outcome = _change(db, uid, True, decide)
    record = runtime.load_gc_record(backup)
    if record is not None and outcome.original and record.get("value") != outcome.original:
        runtime.save_gc_record(backup, {**record, "value": outcome.original})  # what comes back at the end
    log.info("tikv_gc_life_time %s → %s for the backup (%d other holder(s))", outcome.before, outcome.after,
             len(outcome.others))  # fmt: skip
    return outcome


def restore_gc_life_time(connect: Callable[[], DB], backup: Backup, runtime: BackupRuntime) -> Outcome | None:
    """Leave the holders (the value others still need, or the original when none is left) and forget
    the record. Nothing recorded → nothing to do (None). A failure raises and keeps the record, so a
    later ``retry_gc_restore`` or ``recover_interrupted`` tries again; leaving twice is harmless."""
    record = runtime.load_gc_record(backup)
    if not record:
        return None
    if record.get("alone"):
        with connect() as db:
            outcome = _leave_alone(db, record)
        return _forget(runtime, backup, outcome)
    uid = str(record.get("holder") or holder_key(backup))
    legacy = _legacy_original(record)
    with connect() as db:
        outcome = _change(db, uid, False, lambda shared, current, clock: gcshare.leave(
            shared, current, uid, clock, legacy))  # fmt: skip
    return _forget(runtime, backup, outcome)


def _forget(runtime: BackupRuntime, backup: Backup, outcome: Outcome) -> Outcome:
    """The value is restored: a record the state cannot drop now (a full disk) is left for a later
    recovery, whose second leave is harmless, and never reported as a value not restored."""
    try:
        runtime.save_gc_record(backup, None)
    except TibackupError as exc:
        log.warning("tikv_gc_life_time %s → %s as the backup ended; its record stays until a recovery "
                    "(%s)", outcome.before, outcome.after, exc.message)  # fmt: skip
        return outcome
    log.info("tikv_gc_life_time %s → %s as the backup ended", outcome.before, outcome.after)
    return outcome


def holder_key(backup: Backup) -> str:
    """The Backup's uid; without one (tests, tools) a digest of namespace/name. Fits VARIABLE_NAME (64)."""
    uid = backup.metadata.uid or ""
    if uid and len(tidb.GC_HOLDER_PREFIX + uid) <= 64:
        return uid
    name = f"{backup.metadata.namespace or 'default'}/{backup.metadata.name}/{uid}"
    return hashlib.sha256(name.encode()).hexdigest()[:32]


# Deadlocks and TiDB's optimistic write conflicts: the whole change runs again, a few times.
ATTEMPTS = 5


def _change(db: DB, uid: str, joined: bool, decide: Callable[[Shared, str, datetime], Change]) -> Outcome:
    """Read under locks, decide, write and commit, in one transaction; rolled back on any failure."""

    def step(current: str, shared: Shared, clock: datetime) -> Outcome:
        change = decide(shared, current, clock)
        if joined:  # prove it can leave before it counts as shared; its row, if any, is written anew
            tidb.prove_gc_leave(db, tidb.GC_HOLDER_PREFIX + uid)
            shared = Shared(shared.original, {k: v for k, v in shared.holders.items() if k != uid})
        upserts, deletes = gcshare.row_changes(shared, change.after)
        tidb.write_gc_share(db, change.value, upserts, deletes)
        others = {k: v for k, v in change.after.holders.items() if k != uid}
        return Outcome(joined, current, change.value, change.after.original, others, change.expired)

    return _transaction(db, step)


def _transaction(db: DB, step: Callable[[str, Shared, datetime], Outcome]) -> Outcome:
    """``step`` over the rows read under locks; run again on a conflict; rolled back on any failure."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            current, rows, clock = tidb.lock_gc_share(db)
            return step(current, gcshare.read_rows(rows), _server_time(clock))
        except BaseException as exc:
            _rollback(db)
            if (
                isinstance(exc, DatabaseError)
                and exc.code in tidb.GC_CHANGE_RETRY_CODES
                and attempt < ATTEMPTS
            ):
                log.info("tikv_gc_life_time change conflicted with another (%s): trying again", exc.message)
                continue
            raise
    raise AssertionError("unreachable")


# The account may not INSERT or DELETE on mysql.tidb (MySQL's ER_TABLEACCESS_DENIED_ERROR, also TiDB's).
DENIED = frozenset({1142})
SHARE_PRIVILEGES = ("INSERT", "DELETE")


def unshared_account(db: DB) -> tuple[str, str]:
    """Empty when the account may add and remove holder rows (or has roles, which SHOW GRANTS does not
    spell out: the join finds out); otherwise the account, as GRANT names it, and what it lacks."""
    grants = account_grants(db)
    missing = [p for p in SHARE_PRIVILEGES if not grants.has(p, GC_TABLE)]
    if grants.has_roles or not missing:
        return "", ""
    return _current_user(db), ", ".join(missing)


def _refused(message: str) -> str:
    """The privilege a refused join lacked, from the server's 1142 message ('DELETE command denied …')."""
    found = re.search(r"\b(INSERT|DELETE|UPDATE|SELECT) command denied", message, re.IGNORECASE)
    return found.group(1).upper() if found else ", ".join(SHARE_PRIVILEGES)


def _current_user(db: DB) -> str:
    rows = db.query_text("SELECT CURRENT_USER()", "reading the account's name")
    user, _, host = ((rows[0][0] if rows else None) or db.conn_info.user).rpartition("@")
    return f"'{user}'@'{host}'" if user else f"'{host}'"


def _raise_alone(
    db: DB, backup: Backup, runtime: BackupRuntime, target: str, account: str, missing: str
) -> Outcome:
    """Raise the value on its own, as before sharing (``gcshare.alone_join``); the record, saved inside
    the transaction before its commit, marks it ``alone``: its end is ``_leave_alone``."""
    previous = runtime.load_gc_record(backup)
    kept = _legacy_original(previous)  # None for no record or a shared-format one

    def step(current: str, shared: Shared, clock: datetime) -> Outcome:
        alone = gcshare.alone_join(shared, current, target, clock)
        restore_to = kept or alone.restore_to
        if restore_to is not None:
            runtime.save_gc_record(backup, {
                "variable": tidb.GC_VARIABLE,
                "alone": True,
                "value": restore_to,
                "raisedTo": target,
                "host": db.conn_info.host,
                "port": db.conn_info.port,
                "savedAt": rfc3339(clock),
            })  # fmt: skip
        elif previous is not None:
            runtime.save_gc_record(backup, None)  # a failed join's record: nothing to set back
        tidb.write_gc_alone(db, alone.value, alone.original)
        why = (
            f"tikv_gc_life_time is raised by this backup on its own, not shared with the other backups "
            f"of the cluster: the account {account} lacks {missing} ON {GC_TABLE}; another backup of "
            f"this cluster that ends while this one runs may lower it under this one: GRANT INSERT, "
            f"DELETE ON {GC_TABLE} TO {account} so that concurrent Backups of the cluster share it"
        )
        return Outcome(True, current, alone.value, alone.original, alone.others, {}, why)

    outcome = _transaction(db, step)
    log.warning("%s", outcome.not_shared)
    log.info("tikv_gc_life_time %s → %s for the backup, on its own (holding no row; %d other backup(s) "
             "share it)", outcome.before, outcome.after, len(outcome.others))  # fmt: skip
    return outcome


def _leave_alone(db: DB, record: dict[str, Any]) -> Outcome:
    original, raised_to = str(record["value"]), str(record.get("raisedTo") or record["value"])

    def step(current: str, shared: Shared, clock: datetime) -> Outcome:
        alone = gcshare.alone_leave(shared, current, original, raised_to, clock)
        tidb.write_gc_alone(db, alone.value, alone.original)
        return Outcome(False, current, alone.value, None, alone.others, {})

    return _transaction(db, step)


def _rollback(db: DB) -> None:
    with contextlib.suppress(DatabaseError):  # the connection is gone: so is the transaction
        tidb.rollback(db)


def _server_time(clock: str) -> datetime:
    """The database's clock (shared by every holder, unlike the machines running them)."""
    try:
        return datetime.fromisoformat(clock).replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)


def _legacy_original(record: dict[str, Any] | None) -> str | None:
    """The value a record of the old, unshared format restores to (None for a shared-format record)."""
    if not record or "holder" in record or not record.get("value"):
        return None
    return str(record["value"])
