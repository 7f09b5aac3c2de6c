"""The GC life time on a database that dies or freezes mid-backup (embedded runtime, real servers).

Each test runs its own MariaDB (with the ``mysql.tidb`` stand-in) because it kills or freezes it: the
module's ``mariadb`` fixture replaces the session's shared one for the CLI ``env`` fixture.

- killed by PID mid-backup: the Backup ends Failed with the condition ``GCLifeTimeRestorePending``
  (old value, last error); once the server is back, one controller pass restores the value and the
  condition goes;
- frozen (SIGSTOP) mid-dump with ``--read-timeout=3s``: the Backup ends Failed with reason
  ``ReadTimeout`` instead of waiting forever; after SIGCONT one controller pass restores the value.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from testenv import sampledata
from testenv.mariadb import MariaDBServer

from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture
from tests.integration.test_embedded_controller import wait_for
from tibackup.embedded.controller import Controller
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.resources import Backup

__all__ = ["env_fixture"]
pytestmark = pytest.mark.integration
PENDING = "GCLifeTimeRestorePending"


@pytest.fixture()
def mariadb() -> Iterator[MariaDBServer]:
    """A MariaDB of this test alone (it gets killed or frozen), with the mysql.tidb GC stand-in."""
    server = MariaDBServer().start()
    server.execute(
        "CREATE TABLE mysql.tidb (VARIABLE_NAME varchar(64) PRIMARY KEY, "
        "VARIABLE_VALUE varchar(1024), COMMENT varchar(1024))"
    )
    server.execute("INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s', 'stand-in')")
    try:
        yield server
    finally:
        pid = server.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        server.stop()


def _gc(env: Env) -> str:
    return str(
        env.mariadb.execute(
            "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'"
        )[0][0]
    )


def _backup(store: Store) -> Backup:
    backup = store.get(KIND_BACKUP, "test1", "big")
    assert isinstance(backup, Backup)
    return backup


def _start_backup(env: Env, tmp_path: Path, options: list[str]) -> subprocess.Popen[bytes]:
    conn = env.mariadb.connect()
    try:
        sampledata.load_wide_table(conn, env.database, rows=400_000)
    finally:
        conn.close()
    doc = backup_doc(env, "big", dumpling={"options": options})
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(doc))
    log = open(tmp_path / "apply.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "tibackup.cli.main", "apply", "-f", str(tmp_path / "big.yaml"),
         "--wait", "--state-dir", str(env.state)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _reading_rows(env: Env) -> bool:
    rows = env.mariadb.execute(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT%sbtest1%' AND ID <> CONNECTION_ID()"
    )
    return int(rows[0][0]) > 0


def _signal_mid_dump(env: Env, tmp_path: Path, options: list[str], sig: signal.Signals) -> None:
    """Run the backup (``apply --wait`` in a process), send ``sig`` to the database while the dump reads
    rows (with the GC life time raised), and wait for the backup to end (SIGCONT after a SIGSTOP)."""
    process = _start_backup(env, tmp_path, options)
    pid = None
    try:
        wait_for(lambda: _reading_rows(env), 60, "the dump to read rows")
        assert _gc(env) == "72h"
        pid = env.mariadb.pid
        assert pid is not None
        os.kill(pid, sig)
        assert process.wait(timeout=120) != 0
    finally:
        if pid is not None and sig == signal.SIGSTOP:
            os.kill(pid, signal.SIGCONT)
        if process.poll() is None:
            process.kill()
            process.wait()


def _assert_pending(backup: Backup) -> None:
    pending = backup.status.condition(PENDING)
    assert pending is not None, backup.status
    assert pending.reason == "GCLifeTimeNotRestored"
    assert "releasing it (back to 10m0s unless other running backups hold it) failed" in (pending.message or "")
    assert backup.status.phase == "Failed"


def _one_pass_restores(env: Env, store: Store) -> None:
    Controller(env.state).tick()
    assert _gc(env) == "10m0s"
    backup = _backup(store)
    assert backup.status.condition(PENDING) is None
    assert backup.status.phase == "Failed"  # the outcome stays what it was
    assert store.load_gc_record("test1", "big", backup.metadata.uid or "") is None
    described = env.tib("describe", "bk", "big", "-n", "test1").out
    assert "GCLifeTimeRestored" in described


def test_database_killed_mid_backup_gc_restored_by_next_controller_pass(env: Env, tmp_path: Path) -> None:
    store = Store(env.state)
    _signal_mid_dump(env, tmp_path, ["--threads=1", "--rows=50000"], signal.SIGKILL)  # the database dies
    backup = _backup(store)
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.reason == "ConnectionFailed", backup.status
    _assert_pending(backup)
    listed = env.tib("get", "bk", "big", "-n", "test1", "-o", "yaml").out
    assert PENDING in listed

    # A controller pass while the database is still down keeps it pending, with the last error.
    Controller(env.state).tick()
    _assert_pending(_backup(store))
    assert "cannot connect" in (_backup(store).status.condition(PENDING).message or "")  # type: ignore[union-attr]

    env.mariadb.start()  # the database comes back (same data directory and port)
    assert _gc(env) == "72h"
    _one_pass_restores(env, store)


def test_database_frozen_mid_dump_fails_at_read_timeout(env: Env, tmp_path: Path) -> None:
    store = Store(env.state)
    # Frozen, as by a stuck disk or a paused VM; thawed (SIGCONT) once the backup has ended.
    _signal_mid_dump(env, tmp_path, ["--threads=1", "--rows=50000", "--read-timeout=3s"], signal.SIGSTOP)
    backup = _backup(store)
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.reason == "ReadTimeout", backup.status
    assert "sent nothing for 3s (the read timeout)" in (failed.message or "")
    _assert_pending(backup)  # the restore could not reach the frozen server either
    _one_pass_restores(env, store)


# A stop after the folder was verified, while the GC life time restore waits: the backup is whole, so
# the Backup ends Complete with the restore left pending (docs/recovery-and-rerun.md). The gate: a
# transaction of the test holds the row lock of tikv_gc_life_time (taken after the raise, while the dump
# reads rows), so the run's restore UPDATE waits until the test has stopped the run.


def _hold_gc_row(env: Env) -> Any:
    conn = env.mariadb.connect()
    conn.autocommit(False)
    conn.cursor().execute("SELECT * FROM mysql.tidb FOR UPDATE")
    return conn


def _restore_waits(env: Env) -> bool:
    rows = env.mariadb.execute(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT VARIABLE_VALUE FROM mysql.tidb%FOR UPDATE' AND ID <> CONNECTION_ID()"
    )
    return int(rows[0][0]) > 0


def _stop_while_restoring(env: Env, tmp_path: Path, store: Store, sig: signal.Signals) -> Any:
    """Run the backup, hold the GC row, wait for the restore to wait on it, then send ``sig`` to the run."""
    process = _start_backup(env, tmp_path, ["--threads=1", "--rows=50000"])
    try:
        wait_for(lambda: _reading_rows(env), 60, "the dump to read rows")
        assert _gc(env) == "72h"
        lock = _hold_gc_row(env)
        wait_for(lambda: _restore_waits(env), 120, "the GC life time restore to wait for the row")
        during = _backup(store)
        assert during.status.phase == "Running" and during.status.condition("Verified") is not None
        process.send_signal(sig)
        assert process.wait(timeout=120) != 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return lock


def _assert_complete_pending(backup: Backup, stopped: str) -> None:
    complete = backup.status.condition("Complete")
    assert backup.status.phase == "Complete" and complete is not None, backup.status
    assert stopped in (complete.message or "") and "backed up" in (complete.message or "")
    assert backup.status.condition("Failed") is None
    assert (backup.status.backup_size or 0) > 0
    pending = backup.status.condition(PENDING)
    assert pending is not None and "releasing it (back to 10m0s unless other running backups hold it) failed" in (pending.message or ""), backup.status


def _restored_stays_complete(env: Env, store: Store, lock: Any) -> None:
    lock.rollback()
    lock.close()
    Controller(env.state).tick()
    assert _gc(env) == "10m0s"
    backup = _backup(store)
    assert backup.status.phase == "Complete" and backup.status.condition(PENDING) is None
    assert store.load_gc_record("test1", "big", backup.metadata.uid or "") is None
    assert env.tib("rerun", "bk", "big", "-n", "test1").code == 2  # a complete backup: kept


def test_sigterm_after_verification_ends_complete_with_gc_restore_pending(env: Env, tmp_path: Path) -> None:
    store = Store(env.state)
    lock = _stop_while_restoring(env, tmp_path, store, signal.SIGTERM)
    _assert_complete_pending(_backup(store), "the backup process was stopped after verifying it")
    _restored_stays_complete(env, store, lock)


def test_sigkill_after_verification_is_recovered_as_complete(env: Env, tmp_path: Path) -> None:
    store = Store(env.state)
    lock = _stop_while_restoring(env, tmp_path, store, signal.SIGKILL)
    assert _backup(store).status.phase == "Running"
    env.mariadb.execute("SET GLOBAL innodb_lock_wait_timeout = 1")  # recovery's restore: fails fast
    Controller(env.state).tick()  # the process is gone: recovery
    _assert_complete_pending(_backup(store), "the backup process stopped after verifying it")
    _restored_stays_complete(env, store, lock)
