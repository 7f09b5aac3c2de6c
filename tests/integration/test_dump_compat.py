"""Dumpling compatibility as a Dumpling user meets it: file heads, -T with views, -L, -V, sequences."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import _mariadb, dump

pytestmark = pytest.mark.integration

SCHEMA_HEAD = b"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n/*!40101 SET NAMES binary*/;\n"
MARIADB_DATA_HEAD = b"/*!40101 SET NAMES binary*/;\nSET FOREIGN_KEY_CHECKS=0;\n"


def _family(server: MariaDBServer, db: str) -> None:
    """A child table whose name sorts before its parent's, as in the issue."""
    server.execute(f"CREATE TABLE `{db}`.b_parent (id INT PRIMARY KEY) ENGINE=InnoDB")
    server.execute(
        f"CREATE TABLE `{db}`.a_child (id INT PRIMARY KEY, p INT, "
        f"FOREIGN KEY (p) REFERENCES `{db}`.b_parent (id)) ENGINE=InnoDB"
    )
    server.execute(f"INSERT INTO `{db}`.b_parent VALUES (1), (2)")
    server.execute(f"INSERT INTO `{db}`.a_child VALUES (10, 1), (20, 2)")


def test_files_start_as_dumplings_and_a_child_loads_before_its_parent(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    _family(mariadb, fresh_db)
    mariadb.execute(f"CREATE VIEW `{fresh_db}`.v AS SELECT id FROM `{fresh_db}`.b_parent")
    dump(mariadb, tmp_path, "-B", fresh_db, "--no-views=false")
    for name in ("-schema-create.sql", ".a_child-schema.sql", ".v-schema.sql", ".v-schema-view.sql"):
        assert (tmp_path / f"{fresh_db}{name}").read_bytes().startswith(SCHEMA_HEAD), name
    child_data = (tmp_path / f"{fresh_db}.a_child.000000000.sql").read_bytes()
    assert child_data == MARIADB_DATA_HEAD + b"INSERT INTO `a_child` VALUES\n(10,1),\n(20,2);\n"
    # Load in file-name order, child first: each file turns the checks off for itself.
    mariadb.drop_database(fresh_db)
    _mariadb(mariadb, None, (tmp_path / f"{fresh_db}-schema-create.sql").read_bytes())
    for name in (
        "a_child-schema.sql",
        "a_child.000000000.sql",
        "b_parent-schema.sql",
        "b_parent.000000000.sql",
    ):
        _mariadb(mariadb, fresh_db, (tmp_path / f"{fresh_db}.{name}").read_bytes())
    assert (
        mariadb.execute(
            f"SELECT COUNT(*) FROM `{fresh_db}`.a_child JOIN `{fresh_db}`.b_parent ON p = b_parent.id"
        )[0][0]
        == 2
    )


def test_csv_files_have_no_sql_head(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> None:
    _family(mariadb, fresh_db)
    dump(mariadb, tmp_path, "-B", fresh_db, "--filetype", "csv")
    assert (tmp_path / f"{fresh_db}.a_child.000000000.csv").read_bytes() == b'"id","p"\r\n10,1\r\n20,2\r\n'


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TIBACKUP_DB", "MYSQL_PWD"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", "dump", *args],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip


def _db_args(server: MariaDBServer) -> list[str]:
    return ["-h", server.host, "-P", str(server.port), "-u", server.user]


def test_logfile_in_a_missing_folder_is_created_and_gets_the_failure(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """``-L`` into a folder that does not exist: made; the log has the welcome line and the error line."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    logfile = tmp_path / "logs" / "deeper" / "dump.log"
    env = {"TIBACKUP_DB_PASSWORD": mariadb.password}
    proc = _cli(
        *_db_args(mariadb), "-T", f"{fresh_db}.nope", "-o", str(tmp_path / "out"), "-L", str(logfile), env=env
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{fresh_db}.nope does not exist" in errors[0]
    log = logfile.read_text()
    assert "Welcome to tibackup dump" in log.splitlines()[0]
    assert f"dump failed: table {fresh_db}.nope does not exist" in log
    assert proc.stdout == "", "with -L the log goes only to the file, as Dumpling's"
    ok = _cli(*_db_args(mariadb), "-B", fresh_db, "-o", str(tmp_path / "ok"), "-L", str(logfile), env=env)
    assert ok.returncode == 0, ok.stderr
    assert "dump complete" in logfile.read_text()


def test_log_goes_to_stdout_without_logfile(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> None:
    """Dumpling logs to standard output when -L is not given; errors still end in one stderr line."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    proc = _cli(
        *_db_args(mariadb),
        "-B",
        fresh_db,
        "-o",
        str(tmp_path),
        env={"TIBACKUP_DB_PASSWORD": mariadb.password},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "Welcome to tibackup dump" in lines[0] and '["Release Version"=' in lines[0]
    assert '["C Row Reader"=yes' in lines[0]
    assert any("dump complete" in line for line in lines)
    assert "dump complete" not in proc.stderr


def test_logfile_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _cli("-o", str(tmp_path / "out"), "-L", str(blocker / "dump.log"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: -L ") and "cannot write the log file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_banner() -> None:
    import platform

    from tibackup import __version__

    for flag in ("-V", "--version"):
        proc = _cli(flag)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            f"Release version: {__version__}",
            f"Python version:  CPython {platform.python_version()}",
            proc.stdout.splitlines()[2],
        ]
        assert proc.stdout.splitlines()[2].startswith("C row reader:    yes (client library ")


def test_tables_list_with_a_view_writes_its_schema_files(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """``-T db.t,db.v``: the table's files, and the view's -schema.sql and -schema-view.sql (no data)."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, n VARCHAR(5))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1, 'a')")
    mariadb.execute(f"CREATE VIEW `{fresh_db}`.v AS SELECT id, n FROM `{fresh_db}`.t")
    mariadb.execute(f"CREATE VIEW `{fresh_db}`.other AS SELECT id FROM `{fresh_db}`.t")
    dump(mariadb, tmp_path, "-T", f"{fresh_db}.t,{fresh_db}.v")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "metadata", "tibackup-manifest.json", f"{fresh_db}-schema-create.sql", f"{fresh_db}.t-schema.sql",
            f"{fresh_db}.t.000000000.sql", f"{fresh_db}.v-schema.sql", f"{fresh_db}.v-schema-view.sql",
        ]
    )  # fmt: skip
    assert (tmp_path / f"{fresh_db}.v-schema.sql").read_bytes() == (
        SCHEMA_HEAD + b"CREATE TABLE `v`(\n`id` int,\n`n` int\n)ENGINE=MyISAM;\n"
    )
    view = (tmp_path / f"{fresh_db}.v-schema-view.sql").read_bytes()
    assert view.startswith(SCHEMA_HEAD + b"DROP TABLE IF EXISTS `v`;\nDROP VIEW IF EXISTS `v`;\n")
    create = mariadb.execute(f"SHOW CREATE VIEW `{fresh_db}`.v")[0][1].encode()
    assert create + b";\n" in view


def test_sequences_are_skipped_by_default_and_dumped_as_dumpling_with_no_sequences_false(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    mariadb.execute(f"CREATE SEQUENCE `{fresh_db}`.s START WITH 1 INCREMENT BY 1 CACHE 1000")
    mariadb.execute(f"SELECT NEXTVAL(`{fresh_db}`.s)")
    skipped = dump(mariadb, tmp_path / "default", "-B", fresh_db, "--no-sequences")
    assert not any("-schema-sequence" in f.name or ".s." in f.name for f in skipped.files)
    assert not (tmp_path / "default" / f"{fresh_db}.s-schema-sequence.sql").exists()
    dump(mariadb, tmp_path / "with", "-B", fresh_db, "--no-sequences=false")
    names = {p.name for p in (tmp_path / "with").iterdir()}
    assert f"{fresh_db}.s-schema-sequence.sql" in names
    assert not any(n.startswith(f"{fresh_db}.s.") for n in names), "a sequence has no data file"
    create = mariadb.execute(f"SHOW CREATE SEQUENCE `{fresh_db}`.s")[0][1]
    next_value = mariadb.execute(f"SELECT NEXT_NOT_CACHED_VALUE FROM `{fresh_db}`.s")[0][0]
    text = (tmp_path / "with" / f"{fresh_db}.s-schema-sequence.sql").read_bytes()
    assert text == SCHEMA_HEAD + create.encode() + b";\n" + f"SELECT SETVAL(`s`,{next_value});\n".encode()
    # It loads back and hands out values after the ones already used.
    mariadb.drop_database(fresh_db)
    mariadb.create_database(fresh_db)
    _mariadb(mariadb, fresh_db, text)
    assert mariadb.execute(f"SELECT NEXTVAL(`{fresh_db}`.s)")[0][0] >= next_value
