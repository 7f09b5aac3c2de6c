"""``--column-filter`` / ``--column-filter-file``: only the chosen columns, Dumpling's syntax and messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import _mariadb, dump
from tests.integration.test_dump_compat import _cli

pytestmark = pytest.mark.integration


@pytest.fixture()
def secrets(mariadb: MariaDBServer, fresh_db: str) -> str:
    mariadb.execute(
        f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, name VARCHAR(32), secret VARCHAR(32), "
        "g INT AS (id + 1) VIRTUAL, h VARCHAR(70) AS (CONCAT(name, secret)) VIRTUAL, "
        "KEY k_name (name), KEY k_both (name, secret), CONSTRAINT c_secret CHECK (secret <> 'x'))"
    )
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t (id, name, secret) VALUES (1, 'alice', 'hidden1'), (2, 'bob', 'hidden2')"
    )
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.u (id INT PRIMARY KEY, secret VARCHAR(5))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.u VALUES (7, 'keep')")
    return fresh_db


@pytest.mark.parametrize("mode", ["client", "stream", "bulk"])
def test_inline_filter_as_dumplings_own_test(
    mariadb: MariaDBServer, secrets: str, tmp_path: Path, mode: str
) -> None:
    """Dumpling's tests/column_filter: csv, -m, columns ["*", "!secret"] → "id","name" only."""
    rule = f'{{ matcher = ["{secrets}.t"], columns = ["*", "!secret"] }}'
    dump(
        mariadb,
        tmp_path,
        "-B",
        secrets,
        "--filetype",
        "csv",
        "-m",
        "--column-filter",
        rule,
        "--read-mode",
        mode,
    )
    assert (
        tmp_path / f"{secrets}.t.000000000.csv"
    ).read_bytes() == b'"id","name"\r\n1,"alice"\r\n2,"bob"\r\n'
    assert (tmp_path / f"{secrets}.u.000000000.csv").read_bytes() == b'"id","secret"\r\n7,"keep"\r\n'


def test_filter_file_and_the_projected_schema_reload(
    mariadb: MariaDBServer, secrets: str, tmp_path: Path
) -> None:
    path = tmp_path / "column-filter.toml"
    path.write_text(f'[[filters]]\nmatcher = ["{secrets}.t"]\ncolumns = ["ID", "name"]\n')
    dump(mariadb, tmp_path / "out", "-B", secrets, "--column-filter-file", str(path))
    out = tmp_path / "out"
    data = (out / f"{secrets}.t.000000000.sql").read_bytes()
    assert data.endswith(b"INSERT INTO `t` (`id`,`name`) VALUES\n(1,'alice'),\n(2,'bob');\n")
    schema = (out / f"{secrets}.t-schema.sql").read_text()
    assert (
        "`secret`" not in schema
        and "k_both" not in schema
        and "c_secret" not in schema
        and "`h`" not in schema
    )
    assert (
        "`g` int(11) GENERATED ALWAYS AS (`id` + 1) VIRTUAL" in schema and "KEY `k_name` (`name`)" in schema
    )
    mariadb.drop_database(secrets)
    _mariadb(mariadb, None, (out / f"{secrets}-schema-create.sql").read_bytes())
    for name in ("t-schema.sql", "t.000000000.sql"):
        _mariadb(mariadb, secrets, (out / f"{secrets}.{name}").read_bytes())
    assert mariadb.execute(f"SELECT id, name, g FROM `{secrets}`.t ORDER BY id") == [
        (1, "alice", 2),
        (2, "bob", 3),
    ]


def test_later_filters_win_and_case_is_ignored(mariadb: MariaDBServer, secrets: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", secrets, "--filetype", "csv",
         "--column-filter", f'{{ matcher = ["{secrets}.*"], columns = ["*"] }}',
         "--column-filter", f'{{ matcher = ["{secrets}.T"], columns = ["!SECRET"] }}')  # fmt: skip
    assert (tmp_path / f"{secrets}.t.000000000.csv").read_bytes().startswith(b'"id","name"\r\n')
    assert (tmp_path / f"{secrets}.u.000000000.csv").read_bytes().startswith(b'"id","secret"\r\n')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--column-filter", '{ matcher = ["d.t"], columns = ["a"] }', "--column-filter-file", "f.toml"],
         "can't specify both --column-filter and --column-filter-file at the same time"),
        (["--column-filter", '{ matcher = ["d.t"], columns = ["a"] }', "--sql", "SELECT 1"],
         "can't specify both --sql and --column-filter at the same time"),
        (["--column-filter", '{ matcher = ["d.t"], columns = ["a"], colums = ["b"] }'],
         "--column-filter contains unknown TOML keys: filter.colums"),
        (["--column-filter", '{ matcher = ["d.t"], columns = [] }'], "--column-filter filter 0 requires at least one column rule"),
        (["--column-filter", '{ matcher = [], columns = ["a"] }'], "--column-filter filter 0 requires at least one matcher"),
        (["--column-filter", "matcher = nope"], "failed to parse --column-filter 0"),
        (["--column-filter-file", "/nonexistent/cf.toml"], "failed to read --column-filter-file /nonexistent/cf.toml"),
    ],
)  # fmt: skip
def test_bad_column_filters_are_one_line_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    proc = _cli(*args, "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr and "Traceback" not in proc.stderr


def test_a_filter_that_keeps_no_column_fails(mariadb: MariaDBServer, secrets: str, tmp_path: Path) -> None:
    env = {"TIBACKUP_DB_PASSWORD": mariadb.password}
    rule = f'{{ matcher = ["{secrets}.u"], columns = ["nothing*"] }}'
    args = ["-h", mariadb.host, "-P", str(mariadb.port), "-u", mariadb.user, "-B", secrets]
    proc = _cli(*args, "--column-filter", rule, "-o", str(tmp_path), env=env)
    assert proc.returncode == 2
    assert f"column filter selects no writable columns from table `{secrets}`.`u`" in proc.stderr
