"""The server renders rows; this checks it renders them exactly as Dumpling's own rules say, byte for byte.

The oracle below re-implements dumpling/export/sql_type.go in Python (escapeBackslashSQL, the number /
string / bytes receivers) and applies it to the raw values the server hands a plain SELECT under
``SET NAMES binary`` — what Dumpling's Go driver sees. Every data row of the dump must equal it.
"""

from __future__ import annotations

from pathlib import Path

import MySQLdb
import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.alltypes import create_all_types
from tests.integration.dumputil import dump

pytestmark = pytest.mark.integration

_SQL_ESCAPES = {0: b"\\0", 10: b"\\n", 13: b"\\r", 92: b"\\\\", 39: b"\\'", 34: b'\\"', 26: b"\\Z"}
NUMBER = {"tinyint", "smallint", "mediumint", "int", "bigint", "float", "double", "decimal"}
BYTES = {"binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob", "bit"}


def dumpling_value(value: bytes | None, data_type: str, bit_width: int) -> bytes:
    if value is None:
        return b"NULL"
    if data_type in NUMBER:
        return value
    if data_type in BYTES:
        if data_type == "bit":
            value = value.rjust((bit_width + 7) // 8, b"\0")
        return b"x'" + value.hex().encode() + b"'"
    return b"'" + b"".join(_SQL_ESCAPES.get(c, bytes([c])) for c in value) + b"'"


def oracle_rows(server: MariaDBServer, database: str, table: str) -> list[bytes]:
    conn = MySQLdb._mysql.connect(
        host=server.host, port=server.port, user=server.user, password=server.password, conv={}
    )
    conn.query(b"SET NAMES binary")
    conn.query(
        f"SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='{database}' "
        f"AND TABLE_NAME='{table}' AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION".encode()
    )
    cols = [(n.decode(), d.decode(), c.decode()) for n, d, c in conn.store_result().fetch_row(maxrows=0)]
    names = ",".join(f"`{n}`" for n, _, _ in cols)
    conn.query(f"SELECT {names} FROM `{database}`.`{table}` ORDER BY 1".encode())
    rows = conn.store_result().fetch_row(maxrows=0)
    conn.close()
    out = []
    for row in rows:
        parts = []
        for (_, data_type, column_type), value in zip(cols, row, strict=True):
            width = int(column_type.split("(")[1].rstrip(")")) if data_type == "bit" else 0
            parts.append(dumpling_value(value, data_type, width))
        out.append(b"(" + b",".join(parts) + b")")
    return out


def dumped_rows(path: Path) -> list[bytes]:
    text = path.read_bytes()
    body = text.split(b" VALUES\n", 1)[1]
    assert body.endswith(b";\n")
    return body[:-2].split(b",\n")


TABLES = ["ints", "nums", "bits", "times", "strs", "bins", "gen"]


@pytest.mark.parametrize("read_mode", ["client", "stream", "bulk"])
def test_rows_match_dumplings_encoding(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, read_mode: str
) -> None:
    """Every read mode (C reader, server-rendered rows, server-rendered batches) writes the same bytes."""
    from tibackup.dump.conn import HAVE_ROW_READER

    if read_mode == "client" and not HAVE_ROW_READER:
        pytest.fail("the C row reader was not built (setup.py); pip install -e . needs a compiler")
    create_all_types(mariadb, fresh_db)
    dump(mariadb, tmp_path, "-B", fresh_db, "--read-mode", read_mode)
    for table in TABLES:
        rows = dumped_rows(tmp_path / f"{fresh_db}.{table}.000000000.sql")
        assert rows == oracle_rows(mariadb, fresh_db, table), f"{table} in {read_mode} mode"


@pytest.mark.parametrize(
    "csv_flags",
    [
        [],
        [
            "--csv-separator",
            "|",
            "--csv-delimiter",
            "'",
            "--csv-null-value",
            "NULL",
            "--csv-line-terminator",
            "\n",
        ],
        ["--csv-delimiter", "", "--csv-separator", ";;"],
        ["-F", "600"],
    ],
    ids=["defaults", "custom", "no-delimiter", "file-size"],
)
def test_csv_from_the_c_reader_matches_the_servers_rendering(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, csv_flags: list[str]
) -> None:
    """CSV has no oracle of its own here: the server-rendered CSV (checked by LOAD DATA round trips) is
    the reference, and the C reader must write the very same bytes, file for file."""
    create_all_types(mariadb, fresh_db)
    outputs = {}
    for mode in ("client", "bulk"):
        out = tmp_path / mode
        dump(mariadb, out, "-B", fresh_db, "--filetype", "csv", "--read-mode", mode, *csv_flags)
        outputs[mode] = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}
    assert outputs["client"].keys() == outputs["bulk"].keys() and len(outputs["client"]) >= len(TABLES)
    for name, data in outputs["bulk"].items():
        assert outputs["client"][name] == data, name


def test_rows_larger_than_a_read_batch(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> None:
    """Values of several MiB (the C reader hands over ~1 MiB at a time and must grow for one row):
    every row still comes out whole and exact, one statement each at the default -s."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.big (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT)")
    mariadb.execute(
        "INSERT INTO big SELECT seq, REPEAT(UNHEX('00FF5C27'), 700000 * seq), "
        "IF(seq = 2, NULL, REPEAT('it''s\\n', 500000)) FROM seq_1_to_3",
        database=fresh_db,
    )
    mariadb.execute(f"INSERT INTO `{fresh_db}`.big VALUES (4, 'x', 'y'), (5, NULL, '')")
    dump(mariadb, tmp_path, "-B", fresh_db, "--read-mode", "client", "-r", "2")
    text = b"".join(p.read_bytes() for p in sorted(tmp_path.glob(f"{fresh_db}.big.*.sql")))
    statements = text.split(b"/*!40101 SET NAMES binary*/;\nSET FOREIGN_KEY_CHECKS=0;\n")
    rows = []
    for body in b"".join(statements).split(b"INSERT INTO `big` VALUES\n")[1:]:
        assert body.endswith(b";\n")
        rows += body[:-2].split(b",\n")
    assert rows == oracle_rows(mariadb, fresh_db, "big")
