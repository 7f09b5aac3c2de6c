"""TiKV's GC life time, raised while a backup reads and restored afterwards whatever happened (SPEC §3).

TiDB garbage-collects old row versions after ``tikv_gc_life_time`` (a row of ``mysql.tidb``); a dump
that reads one snapshot for longer than that fails. So the manager raises it to ``spec.tikvGCLifeTime``
when it is shorter — after recording the old value durably through the runtime, so that a killed
backup can still be undone by ``recover_interrupted`` — and sets it back when the dump ends.

A restore that fails (the database is down, frozen or refusing) keeps the record: the Backup shows the
condition ``GCLifeTimeRestorePending`` (the old value and the last error) and the embedded controller
and the operator retry (``recover.retry_gc_restore``) until the database answers; the condition goes
once the value is back.

On a server that is not TiDB the same is done when a ``mysql.tidb`` table with a ``tikv_gc_life_time``
row exists: a stand-in for TiDB's GC table, which is how the tests exercise this on MariaDB.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tibackup.dump import tidb
from tibackup.dump.config import Connection
from tibackup.dump.conn import DB, ServerInfo, ServerType
from tibackup.errors import DatabaseError, InvalidSpecError
from tibackup.manager.runtime import BackupRuntime
from tibackup.resources import (
    Backup,
    BackupStatus,
    ConditionType,
    drop_condition,
    parse_duration,
    rfc3339,
    set_side_condition,
)

log = logging.getLogger("tibackup.manager")

PENDING = ConditionType.GC_LIFE_TIME_RESTORE_PENDING
PENDING_REASON = "GCLifeTimeNotRestored"
# A restore must not wait the dump's read timeout (15m) on a frozen server: it is retried anyway.
RESTORE_READ_TIMEOUT = 60.0


def restore_connection(conn: Connection) -> Connection:
    """The dump's connection settings with the read timeout bounded for the restore's two statements."""
    timeout = min(conn.read_timeout or RESTORE_READ_TIMEOUT, RESTORE_READ_TIMEOUT)
    return dataclasses.replace(conn, read_timeout=timeout)


def mark_pending(status: BackupStatus, record: dict[str, Any], error: str, now: datetime) -> BackupStatus:
    """``status`` with the ``GCLifeTimeRestorePending`` condition: the value to restore and the last error."""
    value, raised = record.get("value", "its old value"), record.get("raisedTo", "a longer value")
    message = (
        f"tikv_gc_life_time is still raised to {raised}; restoring it to {value} failed: {error}; retried "
        f"until the database answers (by hand: UPDATE mysql.tidb SET VARIABLE_VALUE='{value}' WHERE "
        "VARIABLE_NAME='tikv_gc_life_time')"
    )
    return set_side_condition(status, PENDING, PENDING_REASON, message, now)


def clear_pending(status: BackupStatus) -> BackupStatus:
    return drop_condition(status, PENDING)


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


def raise_gc_life_time(
    db: DB, backup: Backup, runtime: BackupRuntime, target: str, now: datetime
) -> tuple[str, str] | None:
    """Raise ``tikv_gc_life_time`` to ``target`` if it is shorter; return (old, new) when it changed.

    The old value is saved with ``runtime.save_gc_record`` BEFORE the change. A record left by an
    earlier run of this Backup that never restored it holds the true original and is kept as is.
    """
    current = tidb.read_gc_life_time(db)
    target_seconds = parse_duration(target, "spec.tikvGCLifeTime").total_seconds()
    if _seconds(current) >= target_seconds:
        log.info("tikv_gc_life_time is %s, not shorter than %s: left as is", current, target)
        return None
    previous = runtime.load_gc_record(backup)
    original = str(previous["value"]) if previous and previous.get("value") else current
    if previous is None:
        record: dict[str, Any] = {
            "variable": tidb.GC_VARIABLE,
            "value": original,
            "raisedTo": target,
            "host": db.conn_info.host,
            "port": db.conn_info.port,
            "savedAt": rfc3339(now),
        }
        runtime.save_gc_record(backup, record)
    tidb.write_gc_life_time(db, target)
    log.info("raised tikv_gc_life_time from %s to %s for the backup", current, target)
    return current, target


def restore_gc_life_time(connect: Callable[[], DB], backup: Backup, runtime: BackupRuntime) -> str | None:
    """Set ``tikv_gc_life_time`` back to the recorded value and forget the record; return the value.

    Nothing is recorded → nothing to do (returns None). A failure raises and keeps the record, so a
    later ``recover_interrupted`` can try again.
    """
    record = runtime.load_gc_record(backup)
    if not record or not record.get("value"):
        return None
    value = str(record["value"])
    with connect() as db:
        tidb.write_gc_life_time(db, value)
    runtime.save_gc_record(backup, None)
    log.info("restored tikv_gc_life_time to %s", value)
    return value


def _seconds(value: str) -> float:
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
