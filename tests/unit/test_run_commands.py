"""The hidden ``run-backup`` / ``run-restore`` commands (the embedded controller's child processes): a
name not stored is one NotFound line (exit 5), a run that does not complete exits 1 with its status
stored. No server: the runs fail on their missing Secret before connecting anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.test_embedded_cli import tib
from tibackup.embedded.restores import KIND_RESTORE
from tibackup.embedded.store import KIND_BACKUP, Store

S3 = {"provider": "ceph", "secretName": "no-such-s3", "endpoint": "http://127.0.0.1:1", "bucket": "bucket",
      "region": "us-east-1"}  # fmt: skip
DB = {"host": "127.0.0.1", "port": 1, "user": "root", "secretName": "no-such-db"}
DOCS = {
    "run-backup": {"kind": "Backup", "spec": {"from": DB, "s3": S3, "tableFilter": ["db.*"]}},
    "run-restore": {"kind": "Restore", "spec": {"to": DB, "s3": {**S3, "path": "s3://bucket/backup-x/"}}},
}


@pytest.mark.parametrize(("command", "plural"), [("run-backup", "backups"), ("run-restore", "restores")])
def test_a_name_not_stored_is_one_not_found_line(tmp_path: Path, command: str, plural: str) -> None:
    result = tib(command, "nope", "-n", "test1", "--state-dir", str(tmp_path))
    assert result.code == 5, result
    assert result.err.strip().splitlines() == [
        f'error: {plural}.pingcap.com "nope" not found in namespace "test1"'
    ], result
    assert "Traceback" not in result.err


@pytest.mark.parametrize("command", ["run-backup", "run-restore"])
def test_a_run_that_does_not_complete_exits_1_with_its_status_stored(tmp_path: Path, command: str) -> None:
    doc = {"apiVersion": "pingcap.com/v1alpha1", "metadata": {"name": "one", "namespace": "test1"},
           **DOCS[command]}  # fmt: skip
    assert tib("apply", "-f", "-", "--state-dir", str(tmp_path), stdin=yaml.safe_dump(doc)).code == 0
    result = tib(command, "one", "-n", "test1", "--state-dir", str(tmp_path))
    assert result.code == 1, result
    assert "Traceback" not in result.err
    store = Store(tmp_path)
    try:
        stored = store.get(KIND_BACKUP if command == "run-backup" else KIND_RESTORE, "test1", "one")
    finally:
        store.close()
    assert stored is not None and stored.status.phase == "Failed", stored
    failed = stored.status.condition("Failed")
    assert failed is not None and failed.reason == "SecretNotFound", failed
