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

_WAITING = "SELECT COUNT(*) FROM information_schema.processlist WHERE state LIKE 'Waiting for table%%' AND db = %s"


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
    command = [sys.executable, "-m", "tibackup.cli.main", "load", "-d", str(folder), *db_flags(mariadb),
               "-t", threads]  # fmt: skip
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TIBACKUP_DB", "MYSQL_PWD"))},
           "TIBACKUP_DB_PASSWORD": mariadb.password, "PYTHONFAULTHANDLER": "1"}  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120  # bounds against hangs, not timing assertions
        while not mariadb.execute(_WAITING, (fresh_db,))[0][0] and proc.poll() is None:
            assert time.monotonic() < deadline, "the load never waited on the lock"
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        try:  # the lock is still held: before, the load waited for it (forever)
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
            stacks = proc.communicate(timeout=60)[1][-6000:]
            raise AssertionError(f"Ctrl-C did not stop a load whose sessions wait on a lock:\n{stacks}") from None
        assert not mariadb.execute(_WAITING, (fresh_db,))[0][0]  # none of its statements is left waiting
    finally:
        locker.close()
    proc.stderr = stderr  # type: ignore[assignment]
    _one_error(proc, 130, "interrupted", "run the same command again to resume")
    result = load(mariadb, str(folder), "-t", threads)
    assert result.resumed and not result.already_loaded
    assert checksums(mariadb, fresh_db, ["a", "b"]) == before
    mariadb.drop_database(fresh_db)
