"""The state directory's disk fills while a Backup runs (``apply --wait``): one line naming it, the GC
life time set back (and not called "not restored"), never Complete; once there is space the state is
usable and the Backup ends Failed (Interrupted). The dump is held at its consistency flush by a table
lock until the disk is full, so the order is fixed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.mounts import small_tmpfs
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture
from tests.integration.test_embedded_controller import _gc, gc_stand_in, wait_for
from tests.integration.test_hostile_input import _fill, _tib

pytestmark = pytest.mark.integration
__all__ = ["env_fixture", "gc_stand_in"]


def _phase(state: Path) -> str:
    got = _tib(state, "get", "bk", "full-mid-run", "-n", "test1", "-o", "jsonpath={.status.phase}")
    return got.stdout


def test_state_disk_full_mid_backup(env: Env, gc_stand_in: None, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "tiny", "512k") as mount:
        state = mount / "state"
        subprocess.run(["cp", "-a", str(env.state), str(state)], check=True)
        doc = yaml.safe_dump(backup_doc(env, "full-mid-run"))
        lock = env.mariadb.connect(database=env.database)
        try:
            lock.cursor().execute("LOCK TABLES customers WRITE")  # the dump's consistency flush waits here
            run = subprocess.Popen(
                [sys.executable, "-m", "tibackup.cli.main", "apply", "-f", "-", "--wait", "-n", "test1",
                 "--state-dir", str(state)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert run.stdin is not None
            run.stdin.write(doc)
            run.stdin.close()
            run.stdin = None
            wait_for(lambda: _phase(state) == "Running" and _gc(env) == "72h", 60, "the backup to run")
            _fill(mount)
        finally:
            lock.close()
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 1, stderr
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and errors[0].startswith("error: the disk of the state directory"), stderr
        assert "could not restore tikv_gc_life_time" not in stderr, stderr
        assert _gc(env) == "10m0s"
        assert env.mariadb.execute("SELECT VARIABLE_NAME FROM mysql.tidb") == [("tikv_gc_life_time",)]
        assert _phase(state) == "Running"  # what the disk kept: never Complete
        (mount / "filler").unlink()
        again = _tib(state, "apply", "-f", "-", "--wait", "-n", "test1", stdin=doc)
        assert again.returncode == 1 and "Interrupted" in again.stderr, again
        assert _phase(state) == "Failed" and _gc(env) == "10m0s"


def test_staged_dump_that_fills_the_disk_fails_and_leaves_no_staging(
    env: Env, gc_stand_in: None, tmp_path: Path
) -> None:
    env.mariadb.execute(f"CREATE TABLE `{env.database}`.big (id INT PRIMARY KEY, b VARCHAR(200))")
    env.mariadb.execute(
        "INSERT INTO big SELECT seq, REPEAT('x', 150) FROM seq_1_to_40000", database=env.database
    )
    with small_tmpfs(tmp_path / "tiny", "2m") as mount:
        state = mount / "state"
        subprocess.run(["cp", "-a", str(env.state), str(state)], check=True)
        doc = yaml.safe_dump(backup_doc(env, "full-staged", storageSize="1Gi"))
        run = _tib(state, "apply", "-f", "-", "--wait", "-n", "test1", stdin=doc)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run
        errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "StorageError: no space left on device writing" in errors[0], errors
        assert "free space or use direct S3 output" in errors[0]
        got = _tib(state, "get", "bk", "full-staged", "-n", "test1", "-o", "jsonpath={.status.phase}")
        assert got.stdout == "Failed" and _gc(env) == "10m0s"
        assert not any((state / "staging").rglob("*.sql")), list((state / "staging").rglob("*"))
        deleted = _tib(state, "delete", "bk", "full-staged", "-n", "test1")
        assert deleted.returncode == 0, deleted
