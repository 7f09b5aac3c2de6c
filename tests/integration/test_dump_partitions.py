"""``--partitions p0,p2``: only those partitions' rows, each partition planned on its own (Dumpling #67618)."""

from __future__ import annotations

from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump
from tests.integration.test_dump_chunks import MODES, _data, _dumpling_int_ranges, _keys
from tests.integration.test_dump_compat import _cli, _db_args

pytestmark = pytest.mark.integration


@pytest.fixture()
def ranged(mariadb: MariaDBServer, fresh_db: str) -> str:
    mariadb.execute(
        f"CREATE TABLE `{fresh_db}`.tp (id INT PRIMARY KEY, v INT) ENGINE=MyISAM PARTITION BY RANGE (id) ("
        "PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN (20), "
        "PARTITION p2 VALUES LESS THAN (30), PARTITION p3 VALUES LESS THAN MAXVALUE)"
    )
    mariadb.execute(f"INSERT INTO `{fresh_db}`.tp SELECT seq, seq FROM `{fresh_db}`.seq_1_to_40")
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.other (id INT PRIMARY KEY)")
    return fresh_db


@pytest.mark.parametrize("mode", MODES)
def test_partitions_dump_only_those_partitions_one_file_each(
    mariadb: MariaDBServer, ranged: str, tmp_path: Path, mode: str
) -> None:
    dump(mariadb, tmp_path, "-T", f"{ranged}.tp", "--partitions", "p0,p2", "--read-mode", mode)
    files = _data(tmp_path, "tp")
    assert {i: _keys(b) for i, b in files.items()} == {
        "000000000": [str(k) for k in range(1, 10)],
        "000000001": [str(k) for k in range(20, 30)],
    }
    schema = (tmp_path / f"{ranged}.tp-schema.sql").read_bytes()
    assert b"PARTITION `p3` VALUES LESS THAN MAXVALUE" in schema  # the table's whole schema, as Dumpling


@pytest.mark.parametrize("mode", MODES)
def test_partitions_with_rows_chunk_each_partition_and_number_on(
    mariadb: MariaDBServer, ranged: str, tmp_path: Path, mode: str
) -> None:
    expected: list[tuple[int, int]] = []
    for part, lo, hi in (("p1", 10, 19), ("p3", 30, 40)):
        count = int(mariadb.execute(f"EXPLAIN SELECT `id` FROM `{ranged}`.tp PARTITION (`{part}`)")[-1][8])
        expected += _dumpling_int_ranges(count, lo, hi, 4)
    dump(mariadb, tmp_path, "-T", f"{ranged}.tp", "--partitions", "p1,p3", "-r", "4", "--read-mode", mode)
    files = _data(tmp_path, "tp")
    wanted = [k for k in range(10, 20)] + [k for k in range(30, 41)]
    want = {f"{i:09d}": [str(k) for k in wanted if a <= k < b] for i, (a, b) in enumerate(expected)}
    assert len(want) == 4  # 10 rows // 4 and 11 rows // 4: two chunks each
    assert {i: _keys(b) for i, b in files.items()} == {i: ks for i, ks in want.items() if ks}


def test_partitions_that_do_not_exist_fail_with_the_table_and_its_partitions(
    mariadb: MariaDBServer, ranged: str, tmp_path: Path
) -> None:
    env = {"TIBACKUP_DB_PASSWORD": mariadb.password}
    proc = _cli(
        *_db_args(mariadb), "-T", f"{ranged}.tp", "--partitions", "p0,p9", "-o", str(tmp_path), env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert f"table {ranged}.tp has no partition p9 (its partitions are p0, p1, p2, p3)" in proc.stderr
    proc = _cli(*_db_args(mariadb), "-B", ranged, "--partitions", "p0", "-o", str(tmp_path), env=env)
    assert (
        proc.returncode == 2
        and f"table {ranged}.other has no partition p0 (it is not partitioned)" in proc.stderr
    )
    assert not (tmp_path / "metadata").exists()


def test_partitions_with_sql_is_refused(tmp_path: Path) -> None:
    proc = _cli("--sql", "SELECT 1", "--partitions", "p0", "-o", str(tmp_path))
    assert proc.returncode == 2
    assert "can't specify both --sql and --partitions at the same time" in proc.stderr
