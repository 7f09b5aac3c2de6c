"""TiDB-only SQL (src/tibackup/dump/tidb.py) against a stand-in: no TiDB server can run on these machines.

``TiDBStandIn`` answers the statements the way TiDB's documentation says TiDB does: SHOW MASTER STATUS
reports the current TSO as Position; ``tidb_snapshot`` pins a session; TABLESAMPLE REGIONS() returns the
first key of each region. It records every statement so the tests see exactly what tibackup sends.
"""

from __future__ import annotations

import pytest

from tibackup.dump import tidb
from tibackup.dump.catalog import Column, Table
from tibackup.dump.chunks import plan_chunks
from tibackup.dump.config import Consistency
from tibackup.dump.conn import ServerInfo, ServerType
from tibackup.dump.consistency import ConsistencyGuard, resolve
from tibackup.errors import DatabaseError, UsageError

TSO = "415195906970746880"


class TiDBStandIn:
    """A stand-in for a TiDB session (not TiDB): answers tibackup's TiDB-only statements."""

    def __init__(self, regions: list[tuple[bytes, ...]] | None = None, tso: str = TSO) -> None:
        self.statements: list[str] = []
        self.regions = regions or []
        self.tso = tso
        self.gc = "10m0s"

    def execute(self, sql: str, doing: str = "") -> None:
        self.statements.append(sql)
        if sql.startswith("UPDATE mysql.tidb"):
            self.gc = sql.split("VARIABLE_VALUE = '", 1)[1].split("'", 1)[0]

    def query(self, sql: str, doing: str = "") -> list[tuple[bytes | None, ...]]:
        self.statements.append(sql)
        if "TABLESAMPLE REGIONS()" in sql:
            return list(self.regions)
        raise AssertionError(f"the stand-in does not know {sql!r}")

    def query_text(self, sql: str, doing: str = "") -> list[tuple[str | None, ...]]:
        self.statements.append(sql)
        if sql == "SHOW MASTER STATUS":
            return [("tidb-binlog", self.tso, "", "", "")]
        if sql.startswith("SELECT VARIABLE_VALUE FROM mysql.tidb"):
            return [(self.gc,)]
        if sql.startswith("SELECT VARIABLE_NAME, VARIABLE_VALUE, COMMENT FROM mysql.tidb"):
            return [("tibackup_gc_original", "10m0s", "c"), ("tibackup_gc_other_row", "x", None)]
        if sql == "SELECT UTC_TIMESTAMP()":
            return [("2026-12-01 12:00:00",)]
        if sql.startswith("SHOW TABLE ") and sql.endswith(" NEXT_ROW_ID"):  # columns as TiDB's docs give
            return [("db", "s", "_tidb_rowid", "1", "_TIDB_ROWID"), ("db", "s", "", "2001", "SEQUENCE")]
        raise AssertionError(f"the stand-in does not know {sql!r}")


def test_server_info_recognises_tidb() -> None:
    info = ServerInfo.parse("8.0.11-TiDB-v7.5.1")
    assert info.type is ServerType.TIDB and info.version == "7.5.1"
    assert ServerInfo.parse("10.11.6-MariaDB-0+deb12u1").type is ServerType.MARIADB
    assert ServerInfo.parse("8.0.36").type is ServerType.MYSQL


def test_auto_is_snapshot_on_tidb_and_flush_elsewhere() -> None:
    assert resolve(Consistency.AUTO, ServerInfo(ServerType.TIDB, "7.5")) is Consistency.SNAPSHOT
    assert resolve(Consistency.AUTO, ServerInfo(ServerType.MARIADB, "10.11")) is Consistency.FLUSH
    with pytest.raises(UsageError, match="snapshot needs TiDB"):
        resolve(Consistency.SNAPSHOT, ServerInfo(ServerType.MYSQL, "8.0"))


def test_snapshot_consistency_pins_every_session_to_one_tso() -> None:
    main, workers = TiDBStandIn(), [TiDBStandIn(tso="999"), TiDBStandIn(tso="998")]
    guard = ConsistencyGuard(main, Consistency.SNAPSHOT, ServerInfo(ServerType.TIDB, "7.5"))  # type: ignore[arg-type]
    guard.begin([])
    for worker in workers:
        guard.prepare_worker(worker)  # type: ignore[arg-type]
    assert guard.snapshot == TSO
    expected = f"SET SESSION tidb_snapshot = '{TSO}'"
    assert expected in main.statements
    assert all(w.statements == [expected] for w in workers), "workers never ask their own TSO"


def test_explicit_snapshot_is_used_as_given() -> None:
    main = TiDBStandIn()
    guard = ConsistencyGuard(
        main, Consistency.SNAPSHOT, ServerInfo(ServerType.TIDB, "7.5"), "2026-11-24 10:00:00"
    )  # type: ignore[arg-type]
    guard.begin([])
    assert main.statements == ["SET SESSION tidb_snapshot = '2026-11-24 10:00:00'"]


def test_missing_tso_is_a_clear_error() -> None:
    main = TiDBStandIn(tso="")
    with pytest.raises(DatabaseError, match="--snapshot"):
        tidb.current_tso(main)


def _table(key: tuple[Column, ...]) -> Table:
    return Table("shop", "orders", False, (Column("id", "bigint", "bigint", False),), key, 1000, 100)


def test_regions_become_chunks_with_open_ends() -> None:
    db = TiDBStandIn(regions=[(b"1",), (b"5000",), (b"9000",)])
    key = (Column("id", "bigint", "bigint", False),)
    chunks = plan_chunks(db, _table(key), where="", chunk_rows=1000, bulk=True, on_tidb=True)  # type: ignore[arg-type]
    assert [c.where for c in chunks] == [
        "NOT ((`id` >= 5000))",
        "(((`id` >= 5000))) AND (NOT ((`id` >= 9000)))",
        "((`id` >= 9000))",
    ]
    assert all(c.batches == () for c in chunks), "TiDB chunks are read as streams"
    assert "SELECT `id` FROM `shop`.`orders` TABLESAMPLE REGIONS() ORDER BY `id`" in db.statements


def test_a_partition_samples_only_its_own_regions() -> None:
    """--partitions on TiDB: TABLESAMPLE REGIONS() of that partition only (Dumpling #67618)."""
    from tibackup.record import evolve

    db = TiDBStandIn(regions=[(b"1",), (b"50",)])
    key = (Column("id", "bigint", "bigint", False),)
    table = evolve(_table(key), partition="p1")
    chunks = plan_chunks(db, table, where="", chunk_rows=10, bulk=False, on_tidb=True)  # type: ignore[arg-type]
    assert len(chunks) == 2
    assert "SELECT `id` FROM `shop`.`orders` PARTITION (`p1`) TABLESAMPLE REGIONS() ORDER BY `id`" in db.statements
    assert table.source == "`shop`.`orders` PARTITION (`p1`)"


def test_table_without_primary_key_splits_on_tidb_rowid() -> None:
    db = TiDBStandIn(regions=[(b"1",), (b"700",)])
    chunks = plan_chunks(db, _table(()), where="v > 1", chunk_rows=10, bulk=False, on_tidb=True)  # type: ignore[arg-type]
    assert len(chunks) == 2
    assert "`_tidb_rowid`" in chunks[0].where and chunks[1].where.endswith("(v > 1)")


def test_gc_life_time_read_and_written_in_mysql_tidb() -> None:
    db = TiDBStandIn()
    assert tidb.read_gc_life_time(db) == "10m0s"
    tidb.write_gc_life_time(db, "72h")
    assert db.gc == "72h"
    assert tidb.parse_go_duration("72h") == 72 * 3600
    assert tidb.parse_go_duration("10m0s") == 600
    assert tidb.parse_go_duration("1h30m15.5s") == 5415.5
    with pytest.raises(ValueError):
        tidb.parse_go_duration("ten minutes")


def test_gc_share_change_locks_the_gc_row_first_in_a_pessimistic_transaction() -> None:
    """BEGIN PESSIMISTIC in TiDB's comment syntax, the tikv_gc_life_time row locked before tibackup's rows
    are read (locking reads: the latest committed rows), the life time row written last, then COMMIT."""
    db = TiDBStandIn()
    current, rows, clock = tidb.lock_gc_share(db)
    assert (current, clock) == ("10m0s", "2026-12-01 12:00:00")
    assert rows == {"tibackup_gc_original": ("10m0s", "c"), "tibackup_gc_other_row": ("x", "")}
    begin, lock, ours, _ = db.statements
    assert begin == "BEGIN /*T! PESSIMISTIC */"
    assert lock.endswith("WHERE VARIABLE_NAME = 'tikv_gc_life_time' FOR UPDATE")
    assert "LIKE 'tibackup_gc_%'" in ours and ours.endswith("FOR UPDATE")
    db.statements.clear()
    tidb.write_gc_share(db, "72h", {"tibackup_gc_holder_a": ("{}", "it's")}, ["tibackup_gc_holder_b"])
    insert, delete, update, commit = db.statements
    assert insert.startswith("INSERT INTO mysql.tidb") and "ON DUPLICATE KEY UPDATE" in insert
    assert "'it\\'s'" in insert
    assert delete == "DELETE FROM mysql.tidb WHERE VARIABLE_NAME IN ('tibackup_gc_holder_b')"
    assert update.startswith("UPDATE mysql.tidb") and commit == "COMMIT" and db.gc == "72h"


def test_the_join_check_removes_only_its_own_holder_row() -> None:
    """The DELETE a join runs before it adds its row: that one row by exact name, nothing else."""
    db = TiDBStandIn()
    tidb.prove_gc_leave(db, "tibackup_gc_holder_u-1")
    assert db.statements == ["DELETE FROM mysql.tidb WHERE VARIABLE_NAME = 'tibackup_gc_holder_u-1'"]


def test_sequence_next_value_reads_the_sequence_row_of_next_row_id() -> None:
    session = TiDBStandIn()
    assert tidb.sequence_next_value(session, "db", "s") == 2001
    assert session.statements[-1] == "SHOW TABLE `db`.`s` NEXT_ROW_ID"
