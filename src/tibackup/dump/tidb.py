"""Every statement that only TiDB understands lives here, and nowhere else.

No TiDB server can run on the machines this project is tested on, so these functions are tested against
a stand-in (tests/unit/test_tidb.py, ``TiDBStandIn``) that answers the same statements the way TiDB's
documentation says it does; the GC life time part runs against a real ``mysql.tidb`` table in MariaDB.
"""

from __future__ import annotations

import re
from typing import Protocol

from tibackup.dump.conn import quote_ident, quote_string
from tibackup.errors import DatabaseError


class Queryable(Protocol):
    def execute(self, sql: str, doing: str = "") -> None: ...

    def query(self, sql: str, doing: str = "") -> list[tuple[bytes | None, ...]]: ...

    def query_text(self, sql: str, doing: str = "") -> list[tuple[str | None, ...]]: ...


def current_tso(db: Queryable) -> str:
    """TiDB reports its current TSO as the 'Position' of SHOW MASTER STATUS."""
    rows = db.query_text("SHOW MASTER STATUS", "reading the TiDB TSO")
    if not rows or len(rows[0]) < 2 or not (rows[0][1] or "").isdigit():
        raise DatabaseError("TiDB did not report a TSO in SHOW MASTER STATUS; pass --snapshot explicitly")
    return rows[0][1] or ""


def set_snapshot(db: Queryable, snapshot: str) -> None:
    """Pin this session to one point in time: every read sees the data as of ``snapshot``."""
    db.execute(f"SET SESSION tidb_snapshot = {quote_string(snapshot)}", "setting tidb_snapshot")


def set_mem_quota(db: Queryable, quota: int) -> None:
    db.execute(f"SET SESSION tidb_mem_quota_query = {int(quota)}", "setting tidb_mem_quota_query")


ROW_ID = "_tidb_rowid"  # the hidden handle of a table without a clustered primary key


def region_start_keys(
    db: Queryable, schema: str, table: str, key_columns: list[str], partition: str = ""
) -> list[tuple[bytes | None, ...]]:
    """The first key of each of the table's (or its partition's) regions (TABLESAMPLE REGIONS()), in key order."""
    cols = ", ".join(quote_ident(c) for c in key_columns)
    source = f"{quote_ident(schema)}.{quote_ident(table)}"
    if partition:
        source += f" PARTITION ({quote_ident(partition)})"
    rows = db.query(
        f"SELECT {cols} FROM {source} TABLESAMPLE REGIONS() ORDER BY {cols}",
        "listing TiDB regions",
    )
    return [row for row in rows if all(v is not None for v in row)]


def sequence_next_value(db: Queryable, schema: str, sequence: str) -> int:
    """The next value a sequence hands out cluster-wide (``SHOW TABLE … NEXT_ROW_ID``, ID_TYPE SEQUENCE)."""
    rows = db.query_text(
        f"SHOW TABLE {quote_ident(schema)}.{quote_ident(sequence)} NEXT_ROW_ID",
        "reading a sequence's next value",
    )
    for row in rows:
        if len(row) >= 5 and row[4] == "SEQUENCE" and (row[3] or "").lstrip("-").isdigit():
            return int(row[3] or 0)
    return 0


# -- the GC life time, raised while a backup runs (SPEC §3) ----------------------------------------
GC_VARIABLE = "tikv_gc_life_time"
# A pattern, not compiled here: re compiles it on first use, only when a TiDB is dumped (start-up).
_DURATION = r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$"


def parse_go_duration(text: str) -> float:
    """'10m0s' → 600.0; '72h' → 259200.0 (the subset TiDB writes into mysql.tidb)."""
    m = re.match(_DURATION, text.strip())
    if not text.strip() or not m:
        raise ValueError(f"not a duration: {text!r}")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def read_gc_life_time(db: Queryable) -> str:
    rows = db.query_text(
        f"SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = {quote_string(GC_VARIABLE)}",
        "reading tikv_gc_life_time",
    )
    if not rows or rows[0][0] is None:
        raise DatabaseError("mysql.tidb has no tikv_gc_life_time row: is this a TiDB cluster?")
    return rows[0][0]


def write_gc_life_time(db: Queryable, value: str) -> None:
    db.execute(
        f"UPDATE mysql.tidb SET VARIABLE_VALUE = {quote_string(value)} "
        f"WHERE VARIABLE_NAME = {quote_string(GC_VARIABLE)}",
        "updating tikv_gc_life_time",
    )


# tibackup's own rows in mysql.tidb: the GC life time shared by the backups running at once
# (``manager/gcshare.py`` decides, these statements read and write; docs/gc-life-time.md).
GC_SHARE_PREFIX = "tibackup_gc_"
GC_ORIGINAL = GC_SHARE_PREFIX + "original"  # the value before the first of them raised it
GC_HOLDER_PREFIX = GC_SHARE_PREFIX + "holder_"  # + the Backup's uid: one row per running backup
# Deadlock, and TiDB's write conflict / "cannot retry" answers of an optimistic transaction: run it again.
GC_CHANGE_RETRY_CODES = frozenset({1213, 8002, 8022, 9007})


def lock_gc_share(db: Queryable) -> tuple[str, dict[str, tuple[str, str]], str]:
    """Begin the transaction of one change of the shared GC life time and read it under locks.

    Every change by tibackup first locks the ``tikv_gc_life_time`` row, so changes run one at a time
    whichever process, controller or operator makes them. Pessimistic on TiDB (``/*T! */`` is read by
    TiDB only; other servers see a comment); the reads are locking ("current") reads, which see the
    latest committed rows, not the transaction's start snapshot. Returns the current value, tibackup's
    rows (name → (value, comment)) and the server's clock (UTC, ``YYYY-MM-DD HH:MM:SS``).
    """
    db.execute("BEGIN /*T! PESSIMISTIC */", "starting the GC life time change")
    current = db.query_text(
        f"SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = {quote_string(GC_VARIABLE)} FOR UPDATE",
        "locking tikv_gc_life_time",
    )
    if not current or current[0][0] is None:
        raise DatabaseError("mysql.tidb has no tikv_gc_life_time row: is this a TiDB cluster?")
    rows = db.query_text(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE, COMMENT FROM mysql.tidb WHERE VARIABLE_NAME LIKE "
        f"{quote_string(GC_SHARE_PREFIX + '%')} FOR UPDATE",
        "reading the backups that hold tikv_gc_life_time",
    )
    ours = {
        name: (value or "", comment or "")
        for name, value, comment in rows
        if name and name.startswith(GC_SHARE_PREFIX)
    }
    clock = db.query_text("SELECT UTC_TIMESTAMP()", "reading the server's clock")
    return current[0][0], ours, (clock[0][0] or "") if clock else ""


def prove_gc_leave(db: Queryable, holder: str) -> None:
    """Inside a join's transaction, before it adds ``holder``: remove that row (this backup's own).

    A join must prove it can leave: an account (or its roles, which ``SHOW GRANTS`` does not spell
    out) with INSERT but not DELETE on ``mysql.tidb`` would add its row and never remove it. The
    privilege is checked whether or not a row matches — MariaDB and MySQL when they open the table,
    TiDB when it builds the plan — so such an account is refused here (1142) and the join rolled back."""
    db.execute(
        f"DELETE FROM mysql.tidb WHERE VARIABLE_NAME = {quote_string(holder)}",
        "checking that this backup may remove its holder row of tikv_gc_life_time",
    )


def write_gc_share(
    db: Queryable, value: str, upserts: dict[str, tuple[str, str]], deletes: list[str]
) -> None:
    """Write the change read by ``lock_gc_share`` and commit it. The ``tikv_gc_life_time`` row is written
    even when its value stays, so two optimistic transactions on TiDB always conflict on it."""
    for name, (text, comment) in sorted(upserts.items()):
        db.execute(
            "INSERT INTO mysql.tidb (VARIABLE_NAME, VARIABLE_VALUE, COMMENT) VALUES "
            f"({quote_string(name)}, {quote_string(text)}, {quote_string(comment)}) "
            "ON DUPLICATE KEY UPDATE VARIABLE_VALUE = VALUES(VARIABLE_VALUE), COMMENT = VALUES(COMMENT)",
            "recording a backup that holds tikv_gc_life_time",
        )
    if deletes:
        names = ", ".join(quote_string(name) for name in sorted(deletes))
        db.execute(
            f"DELETE FROM mysql.tidb WHERE VARIABLE_NAME IN ({names})",
            "removing backups that held tikv_gc_life_time",
        )
    write_gc_life_time(db, value)
    db.execute("COMMIT", "committing the GC life time change")


def write_gc_alone(db: Queryable, value: str, original: str | None) -> None:
    """The change of a backup that shares nothing (its account has only SELECT and UPDATE on
    ``mysql.tidb``): UPDATE only, of the value and, when given, of ``tibackup_gc_original``; commit."""
    if original is not None:
        db.execute(
            f"UPDATE mysql.tidb SET VARIABLE_VALUE = {quote_string(original)} "
            f"WHERE VARIABLE_NAME = {quote_string(GC_ORIGINAL)}",
            "keeping tikv_gc_life_time for the backups that share it",
        )
    write_gc_life_time(db, value)
    db.execute("COMMIT", "committing the GC life time change")


def rollback(db: Queryable) -> None:
    db.execute("ROLLBACK", "rolling back")


def gc_table_exists(db: Queryable) -> bool:
    """Whether ``mysql.tidb`` (TiDB's GC settings table) is visible to this account.

    Always true on TiDB; on another server it is a stand-in (tests create one in MariaDB), and the
    backup manager then manages its ``tikv_gc_life_time`` row exactly as on TiDB.
    """
    rows = db.query_text(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'tidb'",
        "looking for mysql.tidb",
    )
    return bool(rows) and (rows[0][0] or "0") != "0"


# -- the loader's part ---------------------------------------------------------------------------------

MULTI_SCHEMA_CHANGE = (6, 2)  # the first TiDB whose ALTER TABLE takes several changes at once


def takes_several_changes(version: str) -> bool:
    """Whether this TiDB's ALTER TABLE takes several changes at once (from v6.2; before, it answers
    ``Unsupported multi schema change``, and the loader adds a table's keys one ALTER each)."""
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2]) >= MULTI_SCHEMA_CHANGE
