"""Ctrl-C (SIGINT) of `tibackup load` while its sessions wait on a lock held by someone else: the
load stops at once (its statements are stopped with KILL QUERY, their transactions roll back), says
how to resume in one line, and the rerun ends with exactly the backup's rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import checksums, dump
from tests.integration.loadutil import db_flags, load
from tests.integration.test_load_errors import _one_error

pytestmark = pytest.mark.integration

# A session waiting on a table lock in that database (its default database, or named in its statement).
_WAITING = (
    "SELECT COUNT(*) FROM information_schema.processlist WHERE state LIKE 'Waiting for table%%' "
    "AND (db = %s OR info LIKE CONCAT('%%', %s, '%%'))"
)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_ctrl_c_while_the_load_waits_on_a_lock_stops_it_and_the_rerun_resumes(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, threads: str
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.a (id INT PRIMARY KEY, v VARCHAR(20))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.a SELECT seq, CONCAT('v', seq) FROM `{fresh_db}`.seq_1_to_20000")
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.b (id INT PRIMARY KEY)")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.b SELECT seq FROM `{fresh_db}`.seq_1_to_100")
    folder = tmp_path / "backup"
    dump(mariadb, folder, "-B", fresh_db, "-s", "4000", "-F", "64KiB")  # many groups of statements
    before = checksums(mariadb, fresh_db, ["a", "b"])
    create = mariadb.execute(f"SHOW CREATE TABLE `{fresh_db}`.a")[0][1]
    mariadb.drop_database(fresh_db)
    mariadb.create_database(fresh_db)
    mariadb.execute(create, database=fresh_db)  # empty: the load loads into it
    locker = mariadb.connect(database=fresh_db)
    locker.cursor().execute("LOCK TABLES a READ")  # every INSERT into a waits for the test
    try:
        _interrupt_once_waiting(mariadb, fresh_db, folder, signal.SIGINT, "-t", threads)
    finally:
        locker.close()
    result = load(mariadb, str(folder), "-t", threads)
    assert result.resumed and not result.already_loaded
    assert checksums(mariadb, fresh_db, ["a", "b"]) == before
    mariadb.drop_database(fresh_db)


def _interrupt_once_waiting(mariadb: MariaDBServer, db: str, folder: Path, sig: int, *flags: str) -> None:
    """Run `tibackup load` until one of its statements waits on a table lock in ``db``, send ``sig``,
    and check that the load ends at once (the lock still held) with the one-line resume message, exit
    130, none of its statements left waiting."""
    command = [sys.executable, "-m", "tibackup.cli.main", "load", "-d", str(folder), *db_flags(mariadb), *flags]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TIBACKUP_DB", "MYSQL_PWD"))},
           "TIBACKUP_DB_PASSWORD": mariadb.password, "PYTHONFAULTHANDLER": "1"}  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120  # bounds against hangs, not timing assertions
    while not mariadb.execute(_WAITING, (db, db))[0][0] and proc.poll() is None:
        assert time.monotonic() < deadline, "the load never waited on the lock"
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    try:  # the lock is still held: before, the load waited for it (forever)
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
        stacks = proc.communicate(timeout=60)[1][-6000:]
        raise AssertionError(f"the signal did not stop a load whose statement waits on a lock:\n{stacks}") from None
    assert not mariadb.execute(_WAITING, (db, db))[0][0]  # none of its statements is left waiting
    proc.stderr = stderr  # type: ignore[assignment]
    _one_error(proc, 130, "interrupted", "run the same command again to resume")


def _table_and_view_dumped(mariadb: MariaDBServer, db: str, tmp_path: Path, keys: str) -> tuple[Path, object]:
    """``db`` given a table ``a`` of 2000 rows (with ``keys``) and a view ``w`` of 9, dumped; the
    folder and a's checksum."""
    mariadb.execute(f"CREATE TABLE `{db}`.a (id INT PRIMARY KEY, v VARCHAR(20){keys})")
    mariadb.execute(f"INSERT INTO `{db}`.a SELECT seq, CONCAT('v', seq) FROM `{db}`.seq_1_to_2000")
    mariadb.execute(f"CREATE VIEW `{db}`.w AS SELECT id FROM `{db}`.a WHERE id < 10")
    folder = tmp_path / "backup"
    dump(mariadb, folder, "-B", db, "--no-views=false")
    return folder, checksums(mariadb, db, ["a"])


@pytest.mark.parametrize("stage,sig", [("refusal check", signal.SIGTERM), ("views", signal.SIGINT)])
def test_a_signal_while_the_main_session_waits_on_a_lock_stops_it_and_the_rerun_finishes(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, stage: str, sig: int
) -> None:
    """The main session's statements (the check that target tables are empty before the data; the
    views after it) wait on a lock another client holds: SIGTERM / Ctrl-C stops them as the data
    sessions' (KILL QUERY), exit 130 with the resume line; the rerun, the lock gone, ends with the
    backup's rows and its view."""
    folder, before = _table_and_view_dumped(mariadb, fresh_db, tmp_path, "")
    create = mariadb.execute(f"SHOW CREATE TABLE `{fresh_db}`.a")[0][1]
    mariadb.drop_database(fresh_db)
    mariadb.create_database(fresh_db)
    if stage == "refusal check":  # the load's first look at its table waits for the WRITE lock
        mariadb.execute(create, database=fresh_db)
        lock = "LOCK TABLES a WRITE"
    else:  # the view's stand-in table is there (as a killed load leaves it): its DROP waits for the lock
        mariadb.execute("CREATE TABLE w (id INT)", database=fresh_db)
        lock = "LOCK TABLES w READ"
    locker = mariadb.connect(database=fresh_db)
    locker.cursor().execute(lock)
    try:
        _interrupt_once_waiting(mariadb, fresh_db, folder, sig, "-t", "2")
    finally:
        locker.close()
    result = load(mariadb, str(folder), "-t", "2")
    assert not result.already_loaded and result.views == 1
    assert checksums(mariadb, fresh_db, ["a"]) == before
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.w")[0][0] == 9
    mariadb.drop_database(fresh_db)


def test_a_signal_while_an_index_build_after_the_data_waits_on_a_lock_stops_it_and_the_rerun_finishes(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """A rerun whose data is all in builds the keys still missing after the data, on sessions of its
    own; one such ALTER waiting on a lock (another client's open transaction has read the table) is
    stopped by SIGTERM too, and the next rerun adds the key."""
    folder, before = _table_and_view_dumped(mariadb, fresh_db, tmp_path, ", KEY k_v (v)")
    mariadb.drop_database(fresh_db)
    mariadb.create_database(fresh_db)
    mariadb.execute("CREATE TABLE w (id INT)", database=fresh_db)  # the view's stand-in: its DROP waits
    locker = mariadb.connect(database=fresh_db)
    locker.cursor().execute("LOCK TABLES w READ")
    try:  # the first run: the data (and a's key) in, stopped at the views
        _interrupt_once_waiting(mariadb, fresh_db, folder, signal.SIGTERM, "-t", "2")
    finally:
        locker.close()
    mariadb.execute(f"ALTER TABLE `{fresh_db}`.a DROP KEY k_v")  # as if its build had not happened yet
    reader = mariadb.connect(database=fresh_db)
    reader.cursor().execute("START TRANSACTION")
    reader.cursor().execute("SELECT COUNT(*) FROM a")  # its metadata lock: an ALTER of a waits for it
    try:  # the second run: nothing left to load; the key is built after the data, and waits
        _interrupt_once_waiting(mariadb, fresh_db, folder, signal.SIGTERM, "-t", "2")
    finally:
        reader.close()
    result = load(mariadb, str(folder), "-t", "2")
    assert result.resumed and not result.already_loaded and result.views == 1
    assert checksums(mariadb, fresh_db, ["a"]) == before
    keys = mariadb.execute(f"SHOW INDEX FROM `{fresh_db}`.a WHERE Key_name = 'k_v'")
    assert keys and mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.w")[0][0] == 9
    mariadb.drop_database(fresh_db)
