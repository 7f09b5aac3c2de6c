"""``-r`` makes Dumpling's chunks: the same files, numbers, row ranges and contents, in every read mode.

Dumpling's rule for an integer key (export/dump.go, ``concurrentDumpTable``): ``count`` is the
optimizer's estimate (EXPLAIN, with ``--where``); below ``-r`` one chunk; else ``count // rows`` chunks
of ``(MAX - MIN) // chunks + 1`` key values each, numbered from 0. MyISAM tables give an exact EXPLAIN
estimate, so the issue's numbers (100 rows → 10 files, 50,000 rows → 5 files) are checked as they are;
InnoDB tables are checked against the rule applied to the estimate the server reports.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump
from tibackup.dump.chunks import int_range

pytestmark = pytest.mark.integration

MODES = ("client", "stream", "bulk")
_ROW = re.compile(rb"^\('?([^,']*)'?,", re.M)


def _data(folder: Path, table: str) -> dict[str, bytes]:
    """{index: contents} of one table's data files."""
    out: dict[str, bytes] = {}
    for p in sorted(folder.iterdir()):
        m = re.fullmatch(rf"[^.]+\.{table}\.(\d+)\.sql", p.name)
        if m:
            out[m.group(1)] = p.read_bytes()
    return out


def _keys(blob: bytes) -> list[str]:
    return [k.decode() for k in _ROW.findall(blob)]


def _dumpling_int_ranges(count: int, lo: int, hi: int, rows: int) -> list[tuple[int, int]]:
    """Dumpling's chunk ranges [start, end) for an integer key, written out from its source."""
    if count < rows:
        return [(lo, hi + 1)]
    step = (hi - lo) // (count // rows) + 1
    return [(start, start + step) for start in range(lo, hi + 1, step)]


def _estimate(server: MariaDBServer, db: str, table: str, column: str, where: str = "") -> int:
    row = server.execute(
        f"EXPLAIN SELECT `{column}` FROM `{db}`.`{table}`{' WHERE ' + where if where else ''}"
    )
    return int(row[-1][8])


@pytest.mark.parametrize("mode", MODES)
def test_int_key_r10_on_100_rows_gives_10_files_of_10(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq, CONCAT('v', seq) FROM `{fresh_db}`.seq_1_to_100")
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "10", "--read-mode", mode)
    files = _data(tmp_path, "t")
    assert list(files) == [f"{i:09d}" for i in range(10)]
    for i, blob in enumerate(files.values()):
        assert _keys(blob) == [str(k) for k in range(i * 10 + 1, i * 10 + 11)]
        assert blob.startswith(
            b"/*!40101 SET NAMES binary*/;\nSET FOREIGN_KEY_CHECKS=0;\nINSERT INTO `t` VALUES\n"
        )


@pytest.mark.parametrize("mode", MODES)
def test_rows_10000_on_50000_rows_gives_5_files(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v INT) ENGINE=MyISAM")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq, seq FROM `{fresh_db}`.seq_1_to_50000")
    dump(mariadb, tmp_path, "-B", fresh_db, "--rows=10000", "--read-mode", mode, "-t", "3")
    files = _data(tmp_path, "t")
    assert list(files) == [f"{i:09d}" for i in range(5)]
    for i, blob in enumerate(files.values()):
        keys = _keys(blob)
        assert (len(keys), keys[0], keys[-1]) == (10000, str(i * 10000 + 1), str(i * 10000 + 10000))


def test_innodb_chunks_follow_the_estimate_and_every_mode_writes_the_same_files(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """A sparse key (gaps), InnoDB's estimate: Dumpling's ranges, identical bytes in every mode."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id BIGINT PRIMARY KEY, v VARCHAR(30))")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT seq * 7, REPEAT('x', seq % 20) FROM `{fresh_db}`.seq_1_to_3000"
    )
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    expected = _dumpling_int_ranges(_estimate(mariadb, fresh_db, "t", "id"), 7, 21000, 250)
    assert len(expected) > 5
    outputs = {}
    for mode in MODES:
        out = tmp_path / mode
        dump(mariadb, out, "-B", fresh_db, "-r", "250", "--read-mode", mode)
        outputs[mode] = _data(out, "t")
    assert outputs["client"] == outputs["stream"] == outputs["bulk"]
    files = outputs["client"]
    want = {
        f"{i:09d}": [str(k) for k in range(7, 21001, 7) if lo <= k < hi]
        for i, (lo, hi) in enumerate(expected)
    }
    assert {i: _keys(b) for i, b in files.items()} == {i: ks for i, ks in want.items() if ks}


@pytest.mark.parametrize("mode", MODES)
def test_r_with_filesize_names_chunk_and_file(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    """``-r 10 -F 100B``: 10 chunks, each in several files named ``%09d%04d`` (chunk, file)."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq, 'abcdefghij' FROM `{fresh_db}`.seq_1_to_100")
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "10", "-F", "100B", "--read-mode", mode)
    files = _data(tmp_path, "t")
    chunks: dict[int, list[str]] = {}
    for index, blob in files.items():
        assert len(index) == 13
        chunks.setdefault(int(index[:9]), []).extend(_keys(blob))
    assert sorted(chunks) == list(range(10))
    for chunk, keys in chunks.items():
        assert keys == [str(k) for k in range(chunk * 10 + 1, chunk * 10 + 11)]
    parts = sorted(files)
    assert len(parts) > 10
    for chunk in range(10):  # file numbers inside a chunk count from 0 without gaps
        numbers = [int(p[9:]) for p in parts if int(p[:9]) == chunk]
        assert numbers == list(range(len(numbers)))


@pytest.mark.parametrize("mode", MODES)
def test_where_with_r_still_chunks(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v INT) ENGINE=MyISAM")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq, seq % 3 FROM `{fresh_db}`.seq_1_to_100")
    where = "id > 40 AND v <> 1"
    count = _estimate(mariadb, fresh_db, "t", "id", where)
    lo, hi = mariadb.execute(f"SELECT MIN(id), MAX(id) FROM `{fresh_db}`.t WHERE {where}")[0]
    expected = _dumpling_int_ranges(count, lo, hi, 5)
    assert len(expected) > 1
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "5", "--where", where, "--read-mode", mode)
    files = _data(tmp_path, "t")
    wanted = [k for k in range(41, 101) if k % 3 != 1]
    want = {f"{i:09d}": [str(k) for k in wanted if a <= k < b] for i, (a, b) in enumerate(expected)}
    assert {i: _keys(b) for i, b in files.items()} == {i: ks for i, ks in want.items() if ks}


@pytest.mark.parametrize("mode", MODES)
def test_string_key_chunks_are_exactly_r_rows(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    """No off-by-one: 100 rows, ``-r 10`` → 10 files of 10 rows in key order."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (k VARCHAR(10) PRIMARY KEY, v INT)")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT LPAD(seq, 4, '0'), seq FROM `{fresh_db}`.seq_1_to_100"
    )
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "10", "--read-mode", mode)
    files = _data(tmp_path, "t")
    assert list(files) == [f"{i:09d}" for i in range(10)]
    for i, blob in enumerate(files.values()):
        assert _keys(blob) == [f"{k:04d}" for k in range(i * 10 + 1, i * 10 + 11)]


@pytest.mark.parametrize("mode", MODES)
def test_composite_key_with_integer_first_column_splits_on_it(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    """Dumpling splits a composite key on its first column when that is an integer."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (a INT, b VARCHAR(5), PRIMARY KEY (a, b)) ENGINE=MyISAM")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT (seq - 1) DIV 5 + 1, CHAR(65 + (seq - 1) % 5) FROM `{fresh_db}`.seq_1_to_100"
    )
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "10", "--read-mode", mode)
    files = _data(tmp_path, "t")
    # count 100 → 10 chunks; a in 1..20 → step (20 - 1) // 10 + 1 = 2 values of a, 10 rows each.
    assert list(files) == [f"{i:09d}" for i in range(10)]
    for i, blob in enumerate(files.values()):
        assert _keys(blob) == [str(a) for a in (2 * i + 1, 2 * i + 2) for _ in range(5)]


@pytest.mark.parametrize("mode", MODES)
def test_composite_key_with_string_first_column_is_walked(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (a VARCHAR(5), b INT, PRIMARY KEY (a, b))")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT CHAR(65 + (seq - 1) DIV 10), seq FROM `{fresh_db}`.seq_1_to_95"
    )
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "20", "--read-mode", mode)
    files = _data(tmp_path, "t")
    assert [len(_keys(b)) for b in files.values()] == [20, 20, 20, 20, 15]
    rows = [line for b in files.values() for line in b.splitlines() if line.startswith(b"(")]
    assert [int(r.split(b",")[1].rstrip(b");")) for r in rows] == list(range(1, 96))


def test_nullable_unique_key_keeps_null_rows_in_the_first_chunk(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """Dumpling picks a nullable unique integer key too; its NULL rows go to chunk 0 and none is lost."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (u INT NULL, v INT, UNIQUE KEY (u)) ENGINE=MyISAM")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT IF(seq % 10 = 0, NULL, seq), seq FROM `{fresh_db}`.seq_1_to_100"
    )
    for mode in MODES:
        out = tmp_path / mode
        dump(mariadb, out, "-B", fresh_db, "-r", "10", "--read-mode", mode)
        files = _data(out, "t")
        assert len(files) > 1
        assert b"(NULL," in files["000000000"]
        assert sum(len(re.findall(rb"^\(", b, re.M)) for b in files.values()) == 100
        assert all(b"(NULL," not in b for i, b in files.items() if i != "000000000")


def test_bulk_batches_inside_a_walked_chunk_keep_it_exactly_r_rows(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """Wide rows: a chunk of -r rows is read in several GROUP_CONCAT batches (64 rows each at most here),
    and the batches still add up to exactly -r rows per chunk."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.w (k VARCHAR(10) PRIMARY KEY, body LONGTEXT)")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.w SELECT LPAD(seq, 4, '0'), REPEAT('x', 60000) FROM `{fresh_db}`.seq_1_to_400"
    )
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.w")
    for mode in ("bulk", "client"):
        out = tmp_path / mode
        dump(mariadb, out, "-B", fresh_db, "-r", "150", "--read-mode", mode)
        files = _data(out, "w")
        assert [len(_keys(b)) for b in files.values()] == [150, 150, 100], mode
        keys = [k for b in files.values() for k in _keys(b)]
        assert keys == [f"{k:04d}" for k in range(1, 401)]
    assert _data(tmp_path / "bulk", "w") == _data(tmp_path / "client", "w")


@pytest.mark.parametrize("column", ["BIGINT", "BIGINT UNSIGNED", "TINYINT", "INT UNSIGNED"])
def test_a_chunks_between_selects_exactly_its_half_open_range_at_the_types_ends(
    mariadb: MariaDBServer, fresh_db: str, column: str
) -> None:
    # int_range writes [lo, hi) as BETWEEN lo AND hi-1 (one condition per row for the server): the rows
    # must be those of ``>= lo AND < hi`` wherever the ends fall, the types' extremes and zero included.
    bits = {"BIGINT": 64, "TINYINT": 8}.get(column.split()[0], 32)
    low, high = (0, 2**bits - 1) if "UNSIGNED" in column else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    values = sorted({low, low + 1, -1 if low < 0 else 2, 0, 1, high - 1, high})
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id {column} PRIMARY KEY)")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES " + ",".join(f"({v})" for v in values))
    for lo, hi in [(low, high + 1), (low, 0), (0, 1), (1, high), (high, high + 1), (low + 1, low + 1)]:
        where = int_range("`id`", lo, hi)
        assert "BETWEEN" in where
        got = [r[0] for r in mariadb.execute(f"SELECT id FROM `{fresh_db}`.t WHERE {where} ORDER BY id")]
        assert got == [v for v in values if lo <= v < hi], (lo, hi, where)
