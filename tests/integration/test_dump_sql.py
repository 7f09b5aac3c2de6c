"""``--sql``: a query's result as Dumpling exports it (its rules, messages and file names)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump
from tests.integration.test_dump_compat import _cli, _db_args

pytestmark = pytest.mark.integration


@pytest.fixture()
def people(mariadb: MariaDBServer, fresh_db: str) -> str:
    mariadb.execute(
        f"CREATE TABLE `{fresh_db}`.p (id INT PRIMARY KEY, name VARCHAR(20), score DECIMAL(5,2), "
        "photo VARBINARY(4), flags BIT(4))"
    )
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.p VALUES (1, 'ann', 1.50, x'00ff', b'1010'), "
        "(2, 'b\"o,b', NULL, NULL, NULL), (3, 'it''s\\nnew', 3.00, '', b'0001')"
    )
    return fresh_db


@pytest.mark.parametrize("mode", ["client", "stream", "bulk"])
def test_sql_writes_result_csv_with_a_header(
    mariadb: MariaDBServer, people: str, tmp_path: Path, mode: str
) -> None:
    result = dump(mariadb, tmp_path, "--sql", f"select id, name, score, photo, flags from `{people}`.p order by id;",
                  "--read-mode", mode)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "metadata",
        "result.000000000.csv",
        "tibackup-manifest.json",
    ]
    assert (tmp_path / "result.000000000.csv").read_bytes() == (
        b'"id","name","score","photo","flags"\r\n'
        b'1,"ann",1.50,"\\0\xff","\\n"\r\n'
        b'2,"b\\"o,b",\\N,\\N,\\N\r\n'
        b'3,"it\'s\\nnew",3.00,"","\x01"\r\n'
    )
    assert result.rows == 3


def test_sql_result_equals_the_table_dump_of_the_same_rows(
    mariadb: MariaDBServer, people: str, tmp_path: Path
) -> None:
    dump(mariadb, tmp_path / "q", "--sql", f"SELECT * FROM `{people}`.p")
    dump(mariadb, tmp_path / "t", "-T", f"{people}.p", "--filetype", "csv")
    assert (tmp_path / "q" / "result.000000000.csv").read_bytes() == (
        tmp_path / "t" / f"{people}.p.000000000.csv"
    ).read_bytes()


def test_sql_with_duplicate_column_names_and_filesize_and_compression(
    mariadb: MariaDBServer, people: str, tmp_path: Path
) -> None:
    """Columns named alike (no derived table possible) still work; -F numbers files as Dumpling."""
    sql = f"SELECT a.id, b.id FROM `{people}`.p a JOIN `{people}`.p b ORDER BY a.id, b.id"
    dump(mariadb, tmp_path, "--sql", sql, "-F", "30B", "-c", "gzip")
    names = sorted(p.name for p in tmp_path.glob("result.*"))
    assert names[0] == "result.000000000.csv.gz" and len(names) > 1
    assert all(n == f"result.{i:09d}.csv.gz" for i, n in enumerate(names))
    text = b"".join(gzip.decompress(p.read_bytes()) for p in sorted(tmp_path.glob("result.*")))
    assert text.count(b'"id","id"\r\n') == len(names)
    assert text.replace(b'"id","id"\r\n', b"").split(b"\r\n")[:-1] == [
        f"{a},{b}".encode() for a in (1, 2, 3) for b in (1, 2, 3)
    ]


def test_sql_with_a_template_and_rows(mariadb: MariaDBServer, people: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "--sql", f"SELECT id FROM `{people}`.p", "--output-filename-template", "q-{{.Index}}",
         "-r", "1", "-F", "1MiB")  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("q-*")) == ["q-0000000000000.csv"]


def test_sql_empty_result_writes_no_data_file(mariadb: MariaDBServer, people: str, tmp_path: Path) -> None:
    result = dump(mariadb, tmp_path, "--sql", f"SELECT * FROM `{people}`.p WHERE id > 100")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata", "tibackup-manifest.json"]
    assert result.rows == 0


def test_sql_refuses_filetype_sql_and_where_with_dumplings_messages(people: str, tmp_path: Path) -> None:
    proc = _cli("--sql", "SELECT 1", "--filetype", "sql", "-o", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: unsupported config.FileType 'sql' when we specify --sql, please unset --filetype or set it to 'csv'"
    ]
    proc = _cli("--sql", "SELECT 1", "--where", "id > 1", "-o", str(tmp_path))
    assert proc.returncode == 2
    assert (
        "can't specify both --sql and --where at the same time. Please try to combine them into --sql"
        in proc.stderr
    )


def test_sql_wrong_query_fails_with_the_servers_error(
    mariadb: MariaDBServer, people: str, tmp_path: Path
) -> None:
    env = {"TIBACKUP_DB_PASSWORD": mariadb.password}
    proc = _cli(
        *_db_args(mariadb), "--sql", f"SELECT nope FROM `{people}`.p", "-o", str(tmp_path / "a"), env=env
    )
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "(1054) Unknown column 'nope'" in errors[0], proc.stderr
    assert not (tmp_path / "a" / "metadata").exists()
    proc = _cli(*_db_args(mariadb), "--sql", "SELEC 1", "-o", str(tmp_path / "b"), env=env)
    assert proc.returncode == 3 and "(1064)" in proc.stderr
