"""The C row reader (``_rowcodec.Reader``) on a real server: whole rows per batch, errors with the
server's code, and an abort that leaves the rest of a large result unread."""

from __future__ import annotations

from collections.abc import Iterator

import MySQLdb
import pytest
from testenv.mariadb import MariaDBServer

from tibackup.dump import _rowcodec
from tibackup.dump.config import Connection
from tibackup.dump.conn import DB
from tibackup.errors import DatabaseError

pytestmark = pytest.mark.integration


@pytest.fixture()
def raw(mariadb: MariaDBServer) -> Iterator[MySQLdb._mysql.connection]:
    conn = MySQLdb._mysql.connect(
        host=mariadb.host, port=mariadb.port, user=mariadb.user, password=mariadb.password, conv={}
    )
    conn.query(b"SET NAMES binary")
    yield conn
    conn.close()


def read_all(reader: _rowcodec.Reader, max_bytes: int) -> list[bytes]:
    blobs = []
    while (batch := reader.read(max_bytes)) is not None:
        blob, rows = batch
        assert rows == blob.count(b",\n") + 1
        blobs.append(blob)
    reader.close()
    return blobs


def test_batches_hold_whole_rows_and_join_to_the_whole_result(raw: MySQLdb._mysql.connection) -> None:
    sql = b"SELECT seq, CONCAT('v', seq, '\\n'), IF(seq % 3 = 0, NULL, UNHEX(HEX(seq))) FROM mysql.seq_1_to_2000"
    whole = read_all(_rowcodec.Reader(raw, sql, b"nsb"), 1 << 30)
    assert len(whole) == 1
    rows = whole[0].split(b",\n")
    assert len(rows) == 2000
    assert rows[0] == b"(1,'v1\\n',x'01')" and rows[2] == b"(3,'v3\\n',NULL)"
    small = read_all(_rowcodec.Reader(raw, sql, b"nsb"), 100)
    assert len(small) > 100, "a small max_bytes gives many batches"
    assert all(len(b) - len(b.rsplit(b",\n", 1)[-1]) - 2 < 100 for b in small), "rows added only below max"
    assert all(b.startswith(b"(") and b.endswith(b")") for b in small)
    assert b",\n".join(small) == whole[0]


def test_server_errors_carry_the_code(raw: MySQLdb._mysql.connection) -> None:
    with pytest.raises(_rowcodec.Error) as info:
        _rowcodec.Reader(raw, b"SELECT no_such_column FROM mysql.seq_1_to_3", b"n")
    assert info.value.args[0] == 1054
    with pytest.raises(ValueError, match="3 columns, but 1 kinds"):
        _rowcodec.Reader(raw, b"SELECT 1, 2, 3", b"n")


def test_abort_leaves_the_rest_unread_and_the_session_closed(raw: MySQLdb._mysql.connection) -> None:
    reader = _rowcodec.Reader(raw, b"SELECT seq FROM mysql.seq_1_to_50000000", b"n")
    assert reader.read(1000) is not None
    reader.abort()  # reading the other ~50M rows would take seconds; the socket is shut instead
    with pytest.raises(MySQLdb.OperationalError) as info:
        raw.query(b"SELECT 1")
    assert info.value.args[0] in (2006, 2013)


def test_db_encoded_rows_translates_errors(mariadb: MariaDBServer) -> None:
    db = DB(Connection(mariadb.host, mariadb.port, mariadb.user, mariadb.password))
    try:
        with pytest.raises(DatabaseError, match="reading t failed") as info:
            db.encoded_rows("SELECT no_such_column FROM mysql.seq_1_to_3", b"n", "reading t")
        assert info.value.code == 1054
        with db.encoded_rows("SELECT seq FROM mysql.seq_1_to_3", b"n") as reader:
            assert reader.read(1 << 20) == (b"(1),\n(2),\n(3)", 3)
            assert reader.read(1 << 20) is None
        assert db.scalar_text("SELECT 42") == "42", "a reader read to the end leaves the session usable"
    finally:
        db.close()


def test_a_session_killed_mid_read_is_one_clear_error(mariadb: MariaDBServer) -> None:
    db = DB(Connection(mariadb.host, mariadb.port, mariadb.user, mariadb.password))
    try:
        session = db.scalar_text("SELECT CONNECTION_ID()")
        with db.encoded_rows("SELECT seq FROM mysql.seq_1_to_50000000", b"n", "reading t") as reader:
            assert reader.read(1000) is not None
            mariadb.execute(f"KILL {session}")
            with pytest.raises(
                DatabaseError, match=r"lost the connection to the database at .* while reading t"
            ):
                while reader.read(1 << 20) is not None:
                    pass
    finally:
        db.close()


def test_rows_larger_than_the_room_of_a_batch_come_whole(raw: MySQLdb._mysql.connection) -> None:
    """A row that does not fit the reader's buffer grows it (a value of 300 kB against a batch of 100
    bytes, 6 MB of rows in one batch): rows come whole, batches end past max_bytes only by one row."""
    sql = b"SELECT seq, REPEAT(CHAR(96 + seq), 300000) FROM mysql.seq_1_to_20"
    expected = [b"(%d,'%s')" % (i, bytes([96 + i]) * 300000) for i in range(1, 21)]
    assert read_all(_rowcodec.Reader(raw, sql, b"ns"), 100) == expected  # one row a batch
    assert read_all(_rowcodec.Reader(raw, sql, b"ns"), 1 << 30) == [b",\n".join(expected)]
    assert read_all(_rowcodec.Reader(raw, sql, b"ns"), 1 << 20) == [
        b",\n".join(expected[i : i + 4]) for i in range(0, 20, 4)
    ]


SQL_ESCAPES = {0: b"\\0", 10: b"\\n", 13: b"\\r", 92: b"\\\\", 39: b"\\'", 34: b'\\"', 26: b"\\Z"}


def escaped(value: bytes, escapes: dict[int, bytes]) -> bytes:
    return b"".join(escapes.get(b, bytes([b])) for b in value)


def values_around_the_blocks() -> list[bytes]:
    """Values of every length up to 50 (the reader scans 16 bytes at a time, then the rest), each
    special byte before, at and after the block edges, several in one block, a block of them only."""
    values = [b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"[:n] for n in range(51)]
    for special in (0, 10, 13, 26, 34, 39, 92, 44, 124):
        for n in (1, 15, 16, 17, 31, 32, 33, 47):
            for at in {0, 1, n // 2, 14, 15, 16, 17, n - 2, n - 1}:
                if 0 <= at < n:
                    value = bytearray(b"x" * n)
                    value[at] = special
                    values.append(bytes(value))
            for first, second in ((0, 15), (3, 12), (10, 14), (14, 15), (15, 16), (16, 30)):
                if second < n:  # two in one value: the second one after the block of the first
                    value = bytearray(b"y" * n)
                    value[first] = value[second] = special
                    values.append(bytes(value))
        values += [bytes([special]) * n for n in (1, 16, 17, 40)]
        values.append(b"ab" + bytes([special]) + b"cd" + bytes([special]) * 3 + b"e" * 30 + bytes([special]))
    values.append(bytes(range(256)) * 2)  # every byte, escaped or not, at every offset in a block
    return values


def test_strings_are_escaped_exactly_whatever_their_length_and_where_the_escapes_fall(
    raw: MySQLdb._mysql.connection,
) -> None:
    """The reader checks values 16 bytes at a time (SSE2) and the end of a value apart; the text is
    Dumpling's escaping byte for byte, in SQL ('b': hex) and in CSV, at every length and offset."""
    values = values_around_the_blocks()
    raw.query(b"CREATE DATABASE IF NOT EXISTS rowreader_blocks")
    raw.query(b"DROP TABLE IF EXISTS rowreader_blocks.v")
    raw.query(b"CREATE TABLE rowreader_blocks.v (id INT PRIMARY KEY, s VARBINARY(600), n INT)")
    for i, value in enumerate(values):
        raw.query(
            b"INSERT INTO rowreader_blocks.v VALUES (%d, X'%s', %d)" % (i, value.hex().encode(), i * 7919)
        )
    try:
        sql = b"SELECT s, s, n FROM rowreader_blocks.v ORDER BY id"
        expected = [
            b"('%s',x'%s',%d)" % (escaped(v, SQL_ESCAPES), v.hex().encode(), i * 7919)
            for i, v in enumerate(values)
        ]
        assert read_all(_rowcodec.Reader(raw, sql, b"sbn"), 1 << 30) == [b",\n".join(expected)]
        csv_escapes = {0: b"\\0", 10: b"\\n", 13: b"\\r", 92: b"\\\\", 124: b"\\|"}
        reader = _rowcodec.Reader(
            raw, b"SELECT s, n FROM rowreader_blocks.v ORDER BY id", b"sn", (b",", b"|", b"\\N", b"\n")
        )
        lines = []
        while (batch := reader.read(1 << 30)) is not None:
            lines += batch[0].split(b"\n")
        reader.close()
        assert lines == [b"|%s|,%d" % (escaped(v, csv_escapes), i * 7919) for i, v in enumerate(values)]
    finally:
        raw.query(b"DROP DATABASE rowreader_blocks")


def test_a_finished_readers_buffer_is_taken_by_the_next_reader(raw: MySQLdb._mysql.connection) -> None:
    """A dump creates a reader per chunk; each one growing a buffer of its own to 1-2 MiB cost a page
    fault per 4 KiB (~7k a dump of 50 tables). A closed reader, or one freed unclosed, leaves its buffer
    for the next one (at most 4 are kept), which then grows nothing it already has."""
    sql = b"SELECT seq, REPEAT('v', 100) FROM mysql.seq_1_to_20000"
    before = _rowcodec.spare_buffers()
    first = read_all(_rowcodec.Reader(raw, sql, b"ns"), 1 << 20)  # read_all closes it
    kept = _rowcodec.spare_buffers()
    assert kept == max(before, 1), "the reader took a kept buffer (or grew one) and left it"
    again = _rowcodec.Reader(raw, sql, b"ns")
    assert _rowcodec.spare_buffers() == kept - 1, "the next reader took the buffer"
    assert read_all(again, 1 << 20) == first, "a reused buffer gives the same bytes"
    unclosed = _rowcodec.Reader(raw, b"SELECT seq FROM mysql.seq_1_to_3", b"n")
    assert unclosed.read(1 << 20) == (b"(1),\n(2),\n(3)", 3)
    assert _rowcodec.spare_buffers() == kept - 1
    del unclosed  # freed without close (its rows were all read, so the session stays usable)
    assert _rowcodec.spare_buffers() == kept
    for _ in range(6):
        read_all(_rowcodec.Reader(raw, b"SELECT 1", b"n"), 100)
    assert _rowcodec.spare_buffers() <= 4
