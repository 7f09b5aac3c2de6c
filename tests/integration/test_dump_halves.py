"""The dump's last chunks are read by two workers each (clientread.SharedChunk), and the files are byte for
byte those of a chunk read whole: statements and -F files cut at the same rows, in SQL and CSV, compressed
or not. bench/trace.py found one worker idle for most of a chunk at the end of each dump before this."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump, read_file
from tibackup.dump import trace

pytestmark = pytest.mark.integration


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.name: read_file(p)
        for p in sorted(folder.iterdir())
        if p.name not in ("metadata", "tibackup-manifest.json")
    }  # times differ


def _halves_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mariadb: MariaDBServer, *flags: str
) -> set[str]:
    """Dump with the trace on; the chunks whose halves were read (``t#8``…), and as ``t#9/4`` those
    read in quarters."""
    out = tmp_path / "trace.txt"
    monkeypatch.setattr(trace, "ENABLED", True)
    monkeypatch.setattr(trace, "_PATH", str(out))
    monkeypatch.setattr(trace, "_events", [])
    dump(mariadb, *flags)
    monkeypatch.setattr(trace, "ENABLED", False)
    halves = [line.split()[4] for line in out.read_text().splitlines() if line.split()[3] == "query"]
    lower = {h.removesuffix(".lo") for h in halves if h.endswith(".lo")}
    assert lower == {h.removesuffix(".hi") for h in halves if h.endswith(".hi")}
    quarters = {h.rsplit(".", 1)[0] for h in halves if re.search(r"\.q\d$", h)}
    for chunk in quarters:  # each quarter read once
        assert sorted(h for h in halves if h.startswith(chunk + ".q")) == [f"{chunk}.q{i}" for i in range(4)]
    return lower | {f"{chunk}/4" for chunk in quarters}


@pytest.mark.parametrize(
    "flags",
    [
        ("-s", "3000"),  # statements cut inside each half
        ("-s", "3000", "-F", "20KiB"),  # and files
        ("--filetype", "csv", "-F", "20KiB"),
        ("-c", "gzip", "-s", "5000"),
    ],
    ids=["statements", "files", "csv", "gzip"],
)
def test_last_chunks_in_halves_write_the_same_bytes_as_whole_chunks(
    mariadb: MariaDBServer,
    fresh_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(40), n INT NULL)")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT seq, CONCAT('v\\n''', REPEAT('x', seq % 30)), IF(seq % 7, seq, NULL) "
        f"FROM `{fresh_db}`.seq_1_to_5000"
    )
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    common = ("-B", fresh_db, "-r", "500", *flags)
    halved = _halves_read(tmp_path, monkeypatch, mariadb, tmp_path / "client", "-t", "2", *common)
    chunks = len({m[1] for name in _files(tmp_path / "client") if (m := re.match(r".+\.t\.(\d+)", name))})
    assert chunks >= 5 and halved == {f"t#{chunks - 2}", f"t#{chunks - 1}/4"}  # the last -t chunks, the last in quarters
    dump(mariadb, tmp_path / "whole", "-t", "1", *common)  # one worker: every chunk read whole
    dump(mariadb, tmp_path / "stream", "-t", "2", "--read-mode", "stream", *common)
    assert _files(tmp_path / "client") == _files(tmp_path / "whole") == _files(tmp_path / "stream")


def test_chunks_whose_halves_would_not_keep_the_key_order_are_read_whole(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunked on n (Dumpling's pick: an integer unique key) but written in the order of the primary key
    # `code`: halves of n's range would not come in `code` order. And a table with no key at all.
    mariadb.execute(
        f"CREATE TABLE `{fresh_db}`.a (code VARCHAR(10) PRIMARY KEY, n INT NOT NULL, UNIQUE KEY (n))"
    )
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.a SELECT CONCAT('c', 3000 - seq), seq FROM `{fresh_db}`.seq_1_to_2000"
    )
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.b (id INT NULL, v INT, UNIQUE KEY (id))")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.b SELECT IF(seq % 50, seq, NULL), seq FROM `{fresh_db}`.seq_1_to_2000"
    )
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.c (id INT PRIMARY KEY)")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.c SELECT seq FROM `{fresh_db}`.seq_1_to_2000")
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.a, `{fresh_db}`.b, `{fresh_db}`.c")
    flags = ("-B", fresh_db, "-r", "200")
    two = _halves_read(tmp_path, monkeypatch, mariadb, tmp_path / "two", *flags, "-t", "2")
    assert {h.split("#")[0] for h in two} == {"c"}  # only the table whose key is the chunk column
    one = _halves_read(tmp_path, monkeypatch, mariadb, tmp_path / "one", *flags, "-t", "1")
    assert one == set()  # one worker: nobody to share a chunk with
    dump(mariadb, tmp_path / "stream", *flags, "-t", "2", "--read-mode", "stream")
    assert _files(tmp_path / "two") == _files(tmp_path / "stream") == _files(tmp_path / "one")


def test_a_failing_half_fails_the_dump_with_its_own_error_and_leaves_no_file(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tibackup.dump import readchunk
    from tibackup.errors import DatabaseError

    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(40))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq, REPEAT('v', 30) FROM `{fresh_db}`.seq_1_to_5000")
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    real = readchunk.client_batches

    def upper_fails(*args: object) -> object:
        for batch in real(*args):  # type: ignore[arg-type]
            if str(args[-1]).endswith(".hi"):  # the label: the upper half of a chunk
                raise DatabaseError("the upper half's read failed", reason="DatabaseError")
            yield batch

    monkeypatch.setattr(readchunk, "client_batches", upper_fails)
    out = tmp_path / "dump"
    with pytest.raises(DatabaseError, match="upper half"):
        dump(mariadb, out, "-B", fresh_db, "-r", "500", "-t", "2", "-s", "2000")
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]
    assert not (out / "metadata").exists()
