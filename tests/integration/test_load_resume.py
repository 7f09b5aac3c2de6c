"""Exactly once across a crash: kill -9 a load at several points, run it again, get the source's rows."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import checksums, dump
from tests.integration.loadutil import db_flags, load

pytestmark = pytest.mark.integration

TABLES = ["nk", "pk"]


@pytest.fixture()
def source_db(mariadb: MariaDBServer, fresh_db: str) -> str:
    # nk has no key: a statement loaded twice would show as duplicate rows in its checksum.
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.nk (a INT, b VARCHAR(60))")
    mariadb.execute(
        "INSERT INTO nk SELECT seq % 1000, CONCAT('row ', seq, REPEAT('y', seq % 40)) FROM seq_1_to_30000",
        database=fresh_db,
    )
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.pk (id INT PRIMARY KEY, v TEXT)")
    mariadb.execute("INSERT INTO pk SELECT seq, REPEAT('z', seq % 300) FROM seq_1_to_8000", database=fresh_db)
    return fresh_db


def _committed(server: MariaDBServer, database: str) -> int:
    """Rows committed so far into ``database``'s tables (a group of statements commits at once)."""
    total = 0
    for (table,) in server.execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
    ):
        with contextlib.suppress(Exception):  # the table may be dropped meanwhile
            total += int(server.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")[0][0])
    return total


def _nk_row_running(server: MariaDBServer, database: str) -> int:
    """The seq of the first row of the ``nk`` statement a load session runs now (0: none)."""
    for (info,) in server.execute(
        "SELECT INFO FROM information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE 'INSERT INTO `nk`%%'",
        (database,),
    ):
        found = re.search(r"'row (\d+)", info or "")
        if found:
            return int(found.group(1))
    return 0


def _start_load(server: MariaDBServer, folder: Path, *flags: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIBACKUP_DB_PASSWORD": server.password}
    return subprocess.Popen(
        [sys.executable, "-m", "tibackup.cli.main", "load", "-d", str(folder), *db_flags(server), "-t", "2",
         "--loglevel", "warn", *flags],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finished(server: MariaDBServer, database: str) -> bool:
    """The load ran to its end: every row is in and its checkpoint rows are gone."""
    if _committed(server, database) < 38000:
        return False
    if not server.execute("SHOW DATABASES LIKE 'tibackup_load'"):
        return True
    return int(server.execute("SELECT COUNT(*) FROM tibackup_load.checkpoints WHERE pos <> -3")[0][0]) == 0


def _kill_after(server: MariaDBServer, database: str, proc: subprocess.Popen[bytes], statements: int) -> bool:
    """kill -9 the load once ``statements`` statements are committed; False if it finished first."""
    deadline = time.monotonic() + 120  # a bound against hangs, not a timing assertion
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _committed(server, database) >= statements:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the load neither progressed nor finished")


def test_kill_9_at_several_points_then_rerun(mariadb: MariaDBServer, source_db: str, tmp_path: Path) -> None:
    # Small statements (-s) make many transactions, so the kills land in the middle of files.
    dump(mariadb, tmp_path, "-B", source_db, "-s", "4000", "-F", "200KiB")
    before = checksums(mariadb, source_db, TABLES)
    data_files = [p for p in tmp_path.iterdir() if ".0" in p.name]
    assert len(data_files) > 4
    mariadb.drop_database(source_db)
    kills = 0
    for threshold in (1, 4000, 9000, 15000):  # rows, of 38000: far from the end, so each kill lands mid-load
        proc = _start_load(mariadb, tmp_path)
        if _kill_after(mariadb, source_db, proc, threshold):
            kills += 1
            if _finished(mariadb, source_db):
                break  # the SIGKILL came after the load had ended: nothing is left to resume
        else:
            assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
            break
    assert kills >= 2, "the load was killed in the middle at least twice"
    assert mariadb.execute(f"SHOW DATABASES LIKE '{source_db}'"), "the killed runs left their work behind"
    finished = _finished(mariadb, source_db)  # a SIGKILL between the load's last commit and its exit
    result = load(mariadb, str(tmp_path), "-t", "2")  # the rerun succeeds either way
    assert checksums(mariadb, source_db, TABLES) == before, "no duplicate, no gap"
    if finished:
        assert result.already_loaded and result.rows == 38000
    else:
        assert result.resumed and not result.already_loaded
        assert result.rows < 38000, "the rerun loaded only what the killed runs had not committed"


def _dumped_and_dropped(mariadb: MariaDBServer, source_db: str, tmp_path: Path) -> object:
    """Dump in 4 kB statements (one file per table), drop the source; its checksums."""
    dump(mariadb, tmp_path, "-B", source_db, "-s", "4000")
    before = checksums(mariadb, source_db, TABLES)
    mariadb.drop_database(source_db)
    return before


def test_rerun_of_a_finished_load_is_already_loaded(
    mariadb: MariaDBServer, source_db: str, tmp_path: Path
) -> None:
    # The state a load killed after its last transaction leaves is the state a finished load leaves.
    before = _dumped_and_dropped(mariadb, source_db, tmp_path)
    first = load(mariadb, str(tmp_path), "-t", "2")
    assert not first.already_loaded and first.rows == 38000
    sql = "SELECT file, pos, `rows` FROM tibackup_load.checkpoints WHERE load_id = %s"
    marks = mariadb.execute(sql, (first.load_id,))
    assert marks == [(b"load:finished", -3, 38000)], "one row, written by the load's last transaction"
    proc = subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", "load", *db_flags(mariadb), "-d", str(tmp_path)],
        env={**os.environ, "TIBACKUP_DB_PASSWORD": mariadb.password}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "already loaded" in proc.stderr and "38,000 rows" in proc.stderr
    assert checksums(mariadb, source_db, TABLES) == before, "nothing loaded twice"
    # Its tables dropped since, the same load runs again from the start.
    mariadb.drop_database(source_db)
    again = load(mariadb, str(tmp_path), "-t", "2")
    assert not again.already_loaded and not again.resumed and again.rows == 38000
    assert checksums(mariadb, source_db, TABLES) == before


def test_kill_9_in_the_middle_of_a_group_then_rerun(
    mariadb: MariaDBServer, source_db: str, tmp_path: Path
) -> None:
    # One file per table, 4 kB statements: nk's file is one group of ~280 statements in one
    # transaction; the kill lands while a statement far into it runs and none of nk is committed.
    before = _dumped_and_dropped(mariadb, source_db, tmp_path)
    proc = _start_load(mariadb, tmp_path)
    deadline = time.monotonic() + 120  # a bound against hangs, not a timing assertion
    while proc.poll() is None and _nk_row_running(mariadb, source_db) < 5000 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert proc.poll() is None, "the load was killed in the middle of a group"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{source_db}`.nk")[0][0] == 0, "the group was not committed"
    result = load(mariadb, str(tmp_path), "-t", "2")
    assert result.resumed
    assert checksums(mariadb, source_db, TABLES) == before, "the rolled-back group loaded once, whole"


def test_one_commit_per_group_not_per_statement(
    mariadb: MariaDBServer, source_db: str, tmp_path: Path
) -> None:
    dump(mariadb, tmp_path, "-B", source_db, "-s", "4000")  # ~750 statements in two files
    before = checksums(mariadb, source_db, TABLES)
    mariadb.drop_database(source_db)
    commits = int(mariadb.execute("SHOW GLOBAL STATUS LIKE 'Com_commit'")[0][1])
    load(mariadb, str(tmp_path), "-t", "2")
    assert int(mariadb.execute("SHOW GLOBAL STATUS LIKE 'Com_commit'")[0][1]) - commits < 50
    assert checksums(mariadb, source_db, TABLES) == before


def test_kill_before_any_data_then_rerun(mariadb: MariaDBServer, source_db: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", source_db)
    before = checksums(mariadb, source_db, TABLES)
    mariadb.drop_database(source_db)
    proc = _start_load(mariadb, tmp_path)
    proc.send_signal(signal.SIGKILL)  # wherever it is: start-up, schemas, the first statements
    proc.wait(timeout=30)
    load(mariadb, str(tmp_path))
    assert checksums(mariadb, source_db, TABLES) == before


def test_a_finished_load_does_not_resume(mariadb: MariaDBServer, source_db: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", source_db)
    mariadb.drop_database(source_db)
    load(mariadb, str(tmp_path))
    again = load(mariadb, str(tmp_path))
    assert again.already_loaded and not again.resumed, "a finished load is not resumed, nor refused"


def _dump_and_start(
    mariadb: MariaDBServer, source_db: str, tmp_path: Path, tables: list[str] = TABLES
) -> tuple[object, subprocess.Popen[bytes]]:
    """Dump in small statements and files (several groups per table), drop the source, start loading
    it back; (checksums, the load)."""
    dump(mariadb, tmp_path, "-B", source_db, "-s", "4000", "-F", "200KiB")
    before = checksums(mariadb, source_db, tables)
    mariadb.drop_database(source_db)
    return before, _start_load(mariadb, tmp_path)


_WAITING_ON_LK = (
    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND STATE LIKE 'Waiting for table%%' "
    "AND INFO LIKE 'INSERT INTO `lk`%%'"
)


def test_lost_connection_then_rerun(mariadb: MariaDBServer, source_db: str, tmp_path: Path) -> None:
    """The server drops the load's connections mid-load (as a restart would): one line naming the lost
    connection, exit 3, and the rerun resumes to exactly the source's rows. Surely mid-load: a third
    table ``lk`` (one file, one group; there already, empty) is locked by another client, so one
    session waits on it while the other commits the rest — the load cannot finish before its
    connections are killed (before, it sometimes did, and the test failed: a flake)."""
    tables = [*TABLES, "lk"]
    mariadb.execute(f"CREATE TABLE `{source_db}`.lk (id INT PRIMARY KEY)")
    mariadb.execute("INSERT INTO lk SELECT seq FROM seq_1_to_10", database=source_db)
    dump(mariadb, tmp_path, "-B", source_db, "-s", "4000", "-F", "200KiB")
    before = checksums(mariadb, source_db, tables)
    create_lk = mariadb.execute(f"SHOW CREATE TABLE `{source_db}`.lk")[0][1]
    mariadb.drop_database(source_db)
    mariadb.create_database(source_db)
    mariadb.execute(create_lk, database=source_db)
    locker = mariadb.connect()  # no default database: not among the connections the test kills
    locker.cursor().execute(f"LOCK TABLES `{source_db}`.lk READ")
    try:
        proc = _start_load(mariadb, tmp_path)
        deadline = time.monotonic() + 120  # a bound against hangs, not a timing assertion
        while not (_committed(mariadb, source_db) >= 3000 and mariadb.execute(_WAITING_ON_LK, (source_db,))[0][0]):
            assert proc.poll() is None and time.monotonic() < deadline, "the load never waited on lk's lock"
            time.sleep(0.005)
        sessions = mariadb.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", (source_db,))
        killed = 0
        for (session,) in sessions:
            with contextlib.suppress(Exception):  # once one is killed, the load ends and closes the rest
                mariadb.execute(f"KILL CONNECTION {int(session)}")  # as a server restart would
                killed += 1
        assert killed, "the load's connections were there to kill (it cannot have finished)"
        proc.wait(timeout=120)
    finally:
        locker.close()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 3, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "connection" in errors[0].lower(), stderr
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{source_db}`.lk")[0][0] == 0, "lk's rows never ran"
    result = load(mariadb, str(tmp_path))
    assert result.resumed
    assert checksums(mariadb, source_db, tables) == before


def test_sigterm_stops_cleanly_then_rerun(mariadb: MariaDBServer, source_db: str, tmp_path: Path) -> None:
    before, proc = _dump_and_start(mariadb, source_db, tmp_path)
    deadline = time.monotonic() + 120
    while proc.poll() is None and _committed(mariadb, source_db) < 3000 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:  # (it may have finished first on a fast machine)
        assert proc.returncode == 130, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "run the same command again to resume" in errors[0], stderr
        assert "Traceback" not in stderr
        load(mariadb, str(tmp_path))
    assert checksums(mariadb, source_db, TABLES) == before


def test_server_killed_and_restarted_then_rerun(tmp_path: Path) -> None:
    """mariadbd itself is killed -9 mid-load (a dedicated server: the shared one must not die)."""
    server = MariaDBServer(tmp_path / "mdb")
    server.start()
    try:
        server.create_database("crashy")
        server.execute("CREATE TABLE crashy.nk (a INT, b VARCHAR(60))")
        server.execute(
            "INSERT INTO nk SELECT seq % 977, REPEAT('q', seq % 50) FROM seq_1_to_30000", database="crashy"
        )
        before, proc = _dump_and_start(server, "crashy", tmp_path / "backup", tables=["nk"])
        deadline = time.monotonic() + 120
        while proc.poll() is None and _committed(server, "crashy") < 6000 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        proc.wait(timeout=120)
        assert proc.returncode == 3, proc.stderr.read().decode() if proc.stderr else ""
        server.start()  # InnoDB recovers: every statement's rows with their checkpoint row, or neither
        result = load(server, str(tmp_path / "backup"))
        assert result.resumed
        assert checksums(server, "crashy", ["nk"]) == before
    finally:
        server.stop()


def test_checkpoint_table_of_an_earlier_version_is_upgraded(
    mariadb: MariaDBServer, source_db: str, tmp_path: Path
) -> None:
    """A table written by a version with one row per statement (no ``upto``) gains the column; its
    rows read as ranges of one statement."""
    dump(mariadb, tmp_path, "-B", source_db)
    before = checksums(mariadb, source_db, TABLES)
    mariadb.drop_database(source_db)
    mariadb.execute("DROP DATABASE IF EXISTS tibackup_load")
    mariadb.execute("CREATE DATABASE tibackup_load")
    mariadb.execute(
        "CREATE TABLE tibackup_load.checkpoints (load_id CHAR(32) CHARACTER SET ascii NOT NULL, "
        "file VARBINARY(1024) NOT NULL, pos BIGINT NOT NULL, `rows` BIGINT NOT NULL DEFAULT 0, "
        "PRIMARY KEY (load_id, file, pos)) ENGINE=InnoDB"
    )
    other = "f" * 32  # another load's row keeps the table after this load
    mariadb.execute(f"INSERT INTO tibackup_load.checkpoints VALUES ('{other}', 'x.y.000000000.sql', 7, 1)")
    try:
        load(mariadb, str(tmp_path))
        assert checksums(mariadb, source_db, TABLES) == before
        sql = f"SELECT pos, upto FROM tibackup_load.checkpoints WHERE load_id = '{other}'"
        assert mariadb.execute(sql) == [(7, -1)]
    finally:
        mariadb.execute("DROP DATABASE IF EXISTS tibackup_load")


def _wait_for(check: Callable[[], object], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120  # a bound against hangs, not a timing assertion
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the load ended or stalled before {what}")
        time.sleep(0.002)


def _waiting_for_lock(server: MariaDBServer, statement: str, database: str) -> bool:
    return bool(
        server.execute(
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock' "
            "AND INFO LIKE %s AND (DB = %s OR INFO LIKE %s)",
            (statement + "%", database, f"%{database}%"),
        )
    )


_TABLE_EXISTS = "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


def _keyed_dumped_and_dropped(mariadb: MariaDBServer, db: str, tmp_path: Path) -> tuple[str, object]:
    """ik (two plain keys, which wait for the data) and a view over it, dumped in 4 kB statements and
    dropped; ik's SHOW CREATE TABLE and checksum."""
    mariadb.execute(
        f"CREATE TABLE `{db}`.ik (id INT PRIMARY KEY, k INT NOT NULL, s VARCHAR(30), KEY k_1 (k), "
        "KEY ks (s(6), k DESC) COMMENT 'two')"
    )
    mariadb.execute(
        "INSERT INTO ik SELECT seq, seq * 7919 % 30000, CONCAT('s', seq % 977) FROM seq_1_to_30000",
        database=db,
    )
    mariadb.execute(f"CREATE VIEW `{db}`.v_ik AS SELECT id, k FROM `{db}`.ik")
    dump(mariadb, tmp_path, "-B", db, "-s", "4000", "--no-views=false")
    shown = mariadb.execute(f"SHOW CREATE TABLE `{db}`.ik")[0][1]
    before = checksums(mariadb, db, ["ik"])
    mariadb.drop_database(db)
    return shown, before


def test_kill_9_once_a_table_is_created_without_its_keys_then_rerun(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """Killed as soon as ik exists (created without its keys, few or none of its rows in): the rerun
    takes ik as its own (not someone else's table), loads the rest and adds the keys."""
    shown, before = _keyed_dumped_and_dropped(mariadb, fresh_db, tmp_path)
    proc = _start_load(mariadb, tmp_path)
    _wait_for(lambda: mariadb.execute(_TABLE_EXISTS, (fresh_db, "ik")), proc, "ik was created")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    keys = "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s"
    assert mariadb.execute(keys, (fresh_db,))[0][0] == 1, "ik was created with its primary key only"
    load(mariadb, str(tmp_path), "-t", "2")
    assert mariadb.execute(f"SHOW CREATE TABLE `{fresh_db}`.ik")[0][1] == shown, "the whole definition"
    assert checksums(mariadb, fresh_db, ["ik"]) == before, "no duplicate, no gap"


@pytest.mark.parametrize(
    ("where", "rerun_flags"), [("during", []), ("during", ["--no-defer-indexes"]), ("after", [])]
)
def test_kill_9_around_the_index_builds_then_rerun(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, where: str, rerun_flags: list[str]
) -> None:
    """Killed while the ALTER that adds ik's keys waits (it dies with its client: the keys are missing),
    or once it is done and the view that comes next waits: the rerun ends with the whole definition
    (with --no-defer-indexes too: the checkpoint's mark says the killed run created ik without them)."""
    shown, before = _keyed_dumped_and_dropped(mariadb, fresh_db, tmp_path)
    alters = int(mariadb.execute("SHOW GLOBAL STATUS LIKE 'Com_alter_table'")[0][1])
    # The lock is taken on ik itself (the ALTER waits for it) or on the view's stand-in table (the
    # view's DROP TABLE waits, after the ALTER); the load is stopped while the test takes it.
    held = "ik" if where == "during" else "v_ik"
    proc = _start_load(mariadb, tmp_path)
    _wait_for(lambda: mariadb.execute(_TABLE_EXISTS, (fresh_db, held)), proc, f"{held} was created")
    proc.send_signal(signal.SIGSTOP)
    blocker = mariadb.connect()
    try:
        cursor = blocker.cursor()
        cursor.execute("BEGIN")
        cursor.execute(f"SELECT * FROM `{fresh_db}`.`{held}` LIMIT 1")  # a metadata lock until COMMIT
        cursor.fetchall()
        proc.send_signal(signal.SIGCONT)
        statement = "ALTER TABLE" if where == "during" else "DROP TABLE"
        _wait_for(lambda: _waiting_for_lock(mariadb, statement, fresh_db), proc, f"{statement} waited")
        if where == "after":
            assert mariadb.execute(f"SHOW CREATE TABLE `{fresh_db}`.ik")[0][1] == shown, "keys before views"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _waiting_for_lock(mariadb, statement, fresh_db) and time.monotonic() < deadline:
            time.sleep(0.01)  # the server ends the killed client's waiting statement
        cursor.execute("COMMIT")
    finally:
        blocker.close()
    done = int(mariadb.execute("SHOW GLOBAL STATUS LIKE 'Com_alter_table'")[0][1])
    assert done - alters == 1, "the killed run sent one ALTER for ik's keys"
    keys = "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s"
    assert mariadb.execute(keys, (fresh_db,))[0][0] == (1 if where == "during" else 3)
    result = load(mariadb, str(tmp_path), "-t", "2", *rerun_flags)
    assert result.resumed and not result.already_loaded
    assert mariadb.execute(f"SHOW CREATE TABLE `{fresh_db}`.ik")[0][1] == shown, "the whole definition"
    assert checksums(mariadb, fresh_db, ["ik"]) == before, "no duplicate, no gap"
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.v_ik")[0][0] == 30000, "the view came last"
    rerun_alters = int(mariadb.execute("SHOW GLOBAL STATUS LIKE 'Com_alter_table'")[0][1]) - done
    assert rerun_alters == (1 if where == "during" else 0), "only what was missing was added"
