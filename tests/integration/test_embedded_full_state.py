"""The state directory's disk fills while a Backup runs (``apply --wait``): one line naming it, the GC
life time set back (and not called "not restored"), never Complete; once the state can be written the
Backup ends Failed (Interrupted), its message naming the state directory while that is still (almost)
full. The dump is held at its consistency flush by a table lock until the disk is full, so the order is
fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.mounts import small_tmpfs
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture
from tests.integration.test_embedded_controller import _gc, gc_stand_in, wait_for
from tests.integration.test_hostile_input import _fill, _tib
from tests.unit.test_run_commands import DOCS
from tibackup.embedded import lifecycle, restores
from tibackup.embedded.restores import KIND_RESTORE
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.resources import Backup, Phase, Restore, set_condition

pytestmark = pytest.mark.integration
__all__ = ["env_fixture", "gc_stand_in"]


def _phase(state: Path) -> str:
    got = _tib(state, "get", "bk", "full-mid-run", "-n", "test1", "-o", "jsonpath={.status.phase}")
    return got.stdout


def _fill_mid_run(env: Env, mount: Path, state: Path, doc: str) -> None:
    """Run the Backup (``apply --wait``) and fill the state disk while it runs: the run ends with the one
    line naming the full disk, the GC life time set back, and the Backup left as saved (``Running``)."""
    subprocess.run(["cp", "-a", str(env.state), str(state)], check=True)
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


def _failed_condition(state: Path) -> dict[str, str]:
    got = _tib(state, "get", "bk", "full-mid-run", "-n", "test1", "-o", "json")
    (failed,) = [c for c in json.loads(got.stdout)["status"]["conditions"] if c["type"] == "Failed"]
    return dict(failed)


def test_state_disk_full_mid_backup(env: Env, gc_stand_in: None, tmp_path: Path) -> None:
    """Found once there is room again, the run is Failed (Interrupted) as any stopped run."""
    with small_tmpfs(tmp_path / "tiny", "2m") as mount:
        state = mount / "state"
        doc = yaml.safe_dump(backup_doc(env, "full-mid-run"))
        _fill_mid_run(env, mount, state, doc)
        (mount / "filler").unlink()
        again = _tib(state, "apply", "-f", "-", "--wait", "-n", "test1", stdin=doc)
        assert again.returncode == 1 and "Interrupted" in again.stderr, again
        assert _phase(state) == "Failed" and _gc(env) == "10m0s"
        failed = _failed_condition(state)
        assert failed["reason"] == "Interrupted" and str(state) not in failed["message"], failed
        assert "run the backup again" in failed["message"], failed


def test_a_run_ended_by_a_full_state_disk_is_failed_naming_the_disk(
    env: Env, gc_stand_in: None, tmp_path: Path
) -> None:
    """Found while the disk is still (almost) full, the run that could not record its end is Failed
    (Interrupted) with a message naming the state directory, that it is full, and the fix."""
    with small_tmpfs(tmp_path / "tiny", "2m") as mount:
        state = mount / "state"
        doc = yaml.safe_dump(backup_doc(env, "full-mid-run"))
        _fill_mid_run(env, mount, state, doc)
        filler = mount / "filler"
        os.truncate(filler, filler.stat().st_size - 256 * 1024)  # a little room: the state can be written
        again = _tib(state, "apply", "-f", "-", "--wait", "-n", "test1", stdin=doc)
        assert again.returncode == 1 and "Traceback" not in again.stderr, again
        assert _phase(state) == "Failed" and _gc(env) == "10m0s"
        failed = _failed_condition(state)
        assert failed["reason"] == "Interrupted", failed
        message = failed["message"]
        assert f"the state directory {state} is full" in message, message
        assert f"free space in {state}, then run the Backup again (tibackup rerun bk full-mid-run -n test1)" in message
        assert "restart or killed Job" not in message, message
        assert message in again.stderr, again.stderr


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


def test_a_stopped_backup_and_restore_found_on_a_full_state_disk_name_it(tmp_path: Path) -> None:
    """What the controller does on its passes (``lifecycle.recover``, ``restores.recover``): a Backup and
    a Restore left Running by a process that is gone, found while the state disk has almost no space,
    are Failed (Interrupted) naming the state directory; no server is needed (their Secrets are missing,
    which the Backup's message adds)."""
    with small_tmpfs(tmp_path / "tiny", "2m") as mount:
        state = mount / "state"
        docs = [{"apiVersion": "pingcap.com/v1alpha1", "metadata": {"name": "one", "namespace": "test1"}, **doc}
                for doc in DOCS.values()]  # fmt: skip
        applied = _tib(state, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
        assert applied.returncode == 0, applied
        store = Store(state)
        try:
            found = [store.get(kind, "test1", "one") for kind in (KIND_BACKUP, KIND_RESTORE)]
            for resource in found:
                assert resource is not None
                resource.status = set_condition(resource.status, Phase.RUNNING, None, "", lifecycle.now())
                store.update_status(resource)
            _fill(mount)
            filler = mount / "filler"
            os.truncate(filler, filler.stat().st_size - 256 * 1024)
            backup, restore = found
            assert isinstance(backup, Backup) and isinstance(restore, Restore)
            ended = [lifecycle.recover(store, backup), restores.recover(store, restore)]
        finally:
            store.close()
    for resource in ended:
        assert resource is not None and resource.status.phase == "Failed", resource
        failed = resource.status.condition("Failed")
        assert failed is not None and failed.reason == "Interrupted", failed
        assert f"the state directory {state} is full (" in failed.message, failed.message
        assert f"free space in {state}, then " in failed.message, failed.message
    assert "secret" in ended[0].status.condition("Failed").message  # type: ignore[union-attr]
    assert "to resume" in ended[1].status.condition("Failed").message  # type: ignore[union-attr]
