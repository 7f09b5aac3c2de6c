"""A table's deferred keys are built as soon as its own data is in, while other tables still load: ik's
ALTER finishes while the only INSERT of another table (``held``, locked by the test) still waits; a
kill -9 while ik's build and held's data are both in flight, then a rerun, ends with the source's
definitions and rows."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import checksums, dump
from tests.integration.loadutil import load
from tests.integration.test_load_resume import _start_load, _wait_for, _waiting_for_lock

pytestmark = pytest.mark.integration

TABLES = ["ik", "held"]
_KEYS = "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
_HELD = "CREATE TABLE `{db}`.held (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB"


def _alters(server: MariaDBServer) -> int:
    return int(server.execute("SHOW GLOBAL STATUS LIKE 'Com_alter_table'")[0][1])


def _definitions(server: MariaDBServer, db: str) -> dict[str, str]:
    return {t: server.execute(f"SHOW CREATE TABLE `{db}`.`{t}`")[0][1] for t in TABLES}


@pytest.fixture()
def dumped(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> tuple[str, dict[str, str], object]:
    """ik (two plain keys, which wait for its data) and held (no secondary key, a few statements of one
    file: one transaction), dumped and dropped; then held is made again, empty, in the target, so the
    test can lock it before the load starts. Their definitions and checksums as they were."""
    db = fresh_db
    mariadb.execute(
        f"CREATE TABLE `{db}`.ik (id INT PRIMARY KEY, k INT NOT NULL, s VARCHAR(30), KEY k_1 (k), "
        "KEY ks (s(6), k DESC) COMMENT 'two') ENGINE=InnoDB"
    )
    mariadb.execute(
        "INSERT INTO ik SELECT seq, seq * 7919 % 30000, CONCAT('s', seq % 977) FROM seq_1_to_30000", database=db
    )
    mariadb.execute(_HELD.format(db=db))
    mariadb.execute("INSERT INTO held SELECT seq, CONCAT('h', seq) FROM seq_1_to_2000", database=db)
    dump(mariadb, tmp_path, "-B", db, "-s", "4000")
    before = _definitions(mariadb, db), checksums(mariadb, db, TABLES)
    mariadb.drop_database(db)
    mariadb.create_database(db)
    mariadb.execute(_HELD.format(db=db))
    return db, *before


def _lock_held(server: MariaDBServer, db: str) -> Any:
    """A session that holds ``LOCK TABLES held READ``: every INSERT into held waits for it."""
    blocker = server.connect()
    blocker.cursor().execute(f"LOCK TABLES `{db}`.held READ")
    return blocker


def _other_sessions(server: MariaDBServer, *ours: Any) -> int:
    """Client sessions of the server but this one and the test's ``ours``: the load's."""
    ids = ", ".join(["CONNECTION_ID()", *(str(int(c.thread_id())) for c in ours)])
    return int(
        server.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s AND COMMAND <> 'Daemon' "
            f"AND ID NOT IN ({ids})",
            (server.user,),
        )[0][0]
    )


def _held_waits(server: MariaDBServer, db: str) -> bool:
    return _waiting_for_lock(server, "INSERT INTO `held`", db)


@pytest.mark.parametrize("flags", [[], ["--checkpoint=false"], ["--read-timeout", "0"]])
def test_a_tables_keys_are_built_while_another_table_still_loads(
    mariadb: MariaDBServer, dumped: tuple[str, dict[str, str], object], tmp_path: Path, flags: list[str]
) -> None:
    """held's only INSERT waits for the test's lock; meanwhile ik's rows load and its keys are added
    (before: every ALTER waited for the last table's data, so ik's keys never came while held waited)."""
    db, shown, sums = dumped
    alters = _alters(mariadb)
    blocker = _lock_held(mariadb, db)
    try:
        proc = _start_load(mariadb, tmp_path, *flags)
        _wait_for(lambda: mariadb.execute(_KEYS, (db, "ik"))[0][0] == 3, proc, "ik got its keys")
        assert mariadb.execute(f"SELECT COUNT(*) FROM `{db}`.held")[0][0] == 0, "held's data is not in yet"
        assert _held_waits(mariadb, db), "held's INSERT still waits: ik's build overlapped other data"
        assert mariadb.execute(f"SHOW CREATE TABLE `{db}`.ik")[0][1] == shown["ik"]
    finally:
        blocker.cursor().execute("UNLOCK TABLES")
        blocker.close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    assert _definitions(mariadb, db) == shown
    assert checksums(mariadb, db, TABLES) == sums
    assert _alters(mariadb) - alters == 1, "one ALTER, ik's; none at the end"


def test_kill_9_during_an_overlapped_build_then_rerun(
    mariadb: MariaDBServer, dumped: tuple[str, dict[str, str], object], tmp_path: Path
) -> None:
    """Killed while ik's ALTER waits (for the test's metadata lock on ik) and held's INSERT waits too:
    the rerun loads held, adds ik's keys (the checkpoint's mark says they wait) and nothing twice."""
    db, shown, sums = dumped
    alters = _alters(mariadb)
    blocker = _lock_held(mariadb, db)
    reader = mariadb.connect()
    try:
        proc = _start_load(mariadb, tmp_path)
        _wait_for(lambda: mariadb.execute(_KEYS, (db, "ik"))[0][0] == 1, proc, "ik was created")
        proc.send_signal(signal.SIGSTOP)
        cursor = reader.cursor()
        cursor.execute("BEGIN")
        cursor.execute(f"SELECT * FROM `{db}`.ik LIMIT 1")  # a metadata lock the ALTER waits for
        cursor.fetchall()
        proc.send_signal(signal.SIGCONT)
        _wait_for(lambda: _waiting_for_lock(mariadb, "ALTER TABLE", db) and _held_waits(mariadb, db), proc,
                  "ik's ALTER and held's INSERT both waited")  # fmt: skip
        # The ALTER runs in its data session's place: main + 2 (a connection that just closed may
        # linger for a moment in the list; one kept open beside the build would not go away).
        _wait_for(lambda: _other_sessions(mariadb, blocker, reader) <= 3, proc, "the load had -t + 1 sessions")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60  # a bound against hangs
        while (_waiting_for_lock(mariadb, "ALTER TABLE", db) or _held_waits(mariadb, db)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)  # the server ends the killed client's waiting statements
        cursor.execute("COMMIT")
    finally:
        blocker.cursor().execute("UNLOCK TABLES")
        blocker.close()
        reader.close()
    assert _alters(mariadb) - alters == 1, "the killed run sent ik's ALTER"
    assert mariadb.execute(_KEYS, (db, "ik"))[0][0] == 1, "ik's keys died with their ALTER"
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{db}`.held")[0][0] == 0
    done = _alters(mariadb)
    result = load(mariadb, str(tmp_path), "-t", "2")
    assert result.resumed and not result.already_loaded
    assert _definitions(mariadb, db) == shown, "the whole definition"
    assert checksums(mariadb, db, TABLES) == sums, "no duplicate, no gap"
    assert _alters(mariadb) - done == 1, "the rerun added ik's keys once"


def _keyed_tables(server: MariaDBServer, db: str) -> int:
    """Tables of ``db`` that have their secondary keys."""
    return int(
        server.execute(
            "SELECT COUNT(DISTINCT TABLE_NAME) FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = %s AND INDEX_NAME = 'k_1'",
            (db,),
        )[0][0]
    )


@pytest.mark.parametrize("keyed", [1, 2])
def test_kill_9_once_some_tables_have_their_keys_then_rerun(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, keyed: int
) -> None:
    """Three tables with keys, several files each: killed once ``keyed`` of them have their keys (the
    others' data still loading or their builds running), the rerun ends with every definition and
    row as the source's."""
    db, tables = fresh_db, ["k1", "k2", "k3"]
    for table, rows in zip(tables, (24000, 12000, 6000), strict=True):
        mariadb.execute(
            f"CREATE TABLE `{db}`.{table} (id INT PRIMARY KEY, k INT NOT NULL, s VARCHAR(30), "
            "KEY k_1 (k), KEY ks (s(6), k DESC)) ENGINE=InnoDB"
        )
        mariadb.execute(
            f"INSERT INTO {table} SELECT seq, seq * 7919 % {rows}, CONCAT('s', seq % 977) FROM seq_1_to_{rows}",
            database=db,
        )
    dump(mariadb, tmp_path, "-B", db, "-s", "4000", "-r", "3000")
    shown = {t: mariadb.execute(f"SHOW CREATE TABLE `{db}`.`{t}`")[0][1] for t in tables}
    sums = checksums(mariadb, db, tables)
    mariadb.drop_database(db)
    proc = _start_load(mariadb, tmp_path)
    _wait_for(lambda: _keyed_tables(mariadb, db) >= keyed, proc, f"{keyed} table(s) had their keys")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = load(mariadb, str(tmp_path), "-t", "2")
    assert result.resumed or result.already_loaded, "the rerun took up the killed run's checkpoint"
    assert {t: mariadb.execute(f"SHOW CREATE TABLE `{db}`.`{t}`")[0][1] for t in tables} == shown
    assert checksums(mariadb, db, tables) == sums, "no duplicate, no gap"
