"""Re-running a Backup in the embedded runtime (real MariaDB and S3): applying the same YAML changes
nothing; ``tibackup rerun bk NAME`` (or a new ``tibackup.pingcap.com/rerun`` annotation, applied and
then run by the controller or ``apply --wait``) runs a Failed Backup again, and a staged dump kept after
a failed upload is uploaded to the same backupPath without dumping again."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.integration.managerutil import wrap_storage
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture, keys_under
from tibackup.embedded.controller import Controller
from tibackup.embedded.paths import staging_dir
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.errors import StorageError
from tibackup.manager import run as run_module
from tibackup.resources import Backup

__all__ = ["env_fixture"]
pytestmark = pytest.mark.integration


def _backup(env: Env, name: str) -> Backup:
    backup = Store(env.state).get(KIND_BACKUP, "test1", name)
    assert isinstance(backup, Backup)
    return backup


def _reason(backup: Backup) -> str | None:
    cond = backup.status.condition(backup.status.phase or "Failed")
    return cond.reason if cond else None


def _count_dumps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = run_module.run_dump

    def counting(config: Any, storage: Any, progress: Any) -> Any:
        calls.append(storage.url)
        return real(config, storage, progress)

    monkeypatch.setattr(run_module, "run_dump", counting)
    return calls


def test_rerun_uploads_the_kept_staged_dump_to_the_same_path(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = yaml.safe_dump(backup_doc(env, "staged", storageSize="1Gi"))
    dumps = _count_dumps(monkeypatch)
    with monkeypatch.context() as patch:
        wrap_storage(
            patch, lambda name: StorageError("S3 refused the upload (simulated)") if ".sql" in name else None
        )
        first = env.tib("apply", "-f", "-", "--wait", stdin=text)
    assert first.code == 1, first
    failed = _backup(env, "staged")
    assert (failed.status.phase, _reason(failed)) == ("Failed", "UploadFailed")
    kept = staging_dir(env.state, "test1", "staged") / "dump"
    assert (kept / "metadata").is_file() and len(dumps) == 1
    path = failed.status.backup_path
    assert path and not any(k.endswith("/metadata") for k in env.s3.list_keys(env.bucket))

    # The same YAML again: unchanged, nothing runs (as kubectl apply on Kubernetes).
    again = env.tib("apply", "-f", "-", "--wait", stdin=text)
    assert "backup.pingcap.com/staged unchanged" in again.out and again.code == 1
    assert _backup(env, "staged").status.phase == "Failed" and len(dumps) == 1

    rerun = env.tib("rerun", "bk", "staged", "-n", "test1", "--wait")
    assert rerun.code == 0, rerun
    assert "backup.pingcap.com/staged rerun requested" in rerun.out
    done = _backup(env, "staged")
    assert done.status.phase == "Complete", done.status
    assert len(dumps) == 1, "no second dump: the kept one was uploaded"
    assert done.status.backup_path == path
    assert any(k.endswith("/metadata") for k in keys_under(env, path))
    assert not kept.exists()
    described = env.tib("describe", "bk", "staged", "-n", "test1").out
    assert "RerunRequested" in described and "StagedDumpReused" in described

    # A Complete Backup is not run again.
    refused = env.tib("rerun", "bk", "staged", "-n", "test1")
    assert refused.code == 2 and "is Complete: create a new Backup" in refused.err


def test_rerun_annotation_applied_is_run_by_the_controller(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = backup_doc(env, "direct")
    doc["spec"]["from"]["user"] = "nobody-here"  # fails: access denied
    assert env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc)).code == 1
    assert _reason(_backup(env, "direct")) == "AccessDenied"

    # Fix the spec and ask for a re-run in the same YAML, as `kubectl annotate --overwrite` would.
    doc["spec"]["from"]["user"] = "root"
    doc["metadata"]["annotations"] = {"tibackup.pingcap.com/rerun": "1"}
    applied = env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert "backup.pingcap.com/direct configured" in applied.out
    Controller(env.state).tick()  # accepts the request and starts the run in a child process
    store = Store(env.state)
    backup = _backup(env, "direct")
    assert backup.status.rerun_token == "1" and backup.status.phase in (
        "Scheduled",
        "Prepare",
        "Running",
        "Complete",
    )
    # --wait on the same request waits for the controller's child to end.
    waited = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
    assert waited.code == 0, waited
    assert _backup(env, "direct").status.phase == "Complete"
    assert all(r.name != "direct" for r in store.runs())
    # The token is acted on once: another pass starts no other run.
    Controller(env.state).tick()
    assert _backup(env, "direct").status.phase == "Complete" and not store.runs()
