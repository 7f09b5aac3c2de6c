"""The embedded store without servers: permissions, apply semantics, status writes, events, run claims."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tibackup.embedded.procs import process_alive, start_ticks
from tibackup.embedded.selector import parse_selector
from tibackup.embedded.store import KIND_BACKUP, ConflictError, Store
from tibackup.resources import Backup, parse_resource, set_condition


def _backup(name: str = "b1", labels: dict[str, str] | None = None, host: str = "db") -> Backup:
    backup = parse_resource(
        {
            "apiVersion": "pingcap.com/v1alpha1",
            "kind": "Backup",
            "metadata": {"name": name, "namespace": "test1", "labels": labels or {}},
            "spec": {
                "from": {"host": host, "secretName": "s"},
                "s3": {"provider": "ceph", "endpoint": "rgw:7480", "bucket": "bkt"},
            },
        }
    )
    assert isinstance(backup, Backup)
    return backup


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def test_state_is_private(store: Store) -> None:
    store.put_secret("test1", "s3-secret", {"access_key": "AK", "secret_key": "SK-very-secret"})
    assert stat.S_IMODE(store.state_dir.stat().st_mode) == 0o700
    for file in store.state_dir.iterdir():
        if file.name.startswith("state.db"):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_apply_creates_configures_and_keeps_status(store: Store) -> None:
    created, action = store.apply(_backup())
    assert action == "created" and created.metadata.uid and created.metadata.creation_timestamp
    assert store.apply(_backup())[1] == "unchanged"
    created.status = set_condition(
        created.status, "Complete", None, None, created.metadata.creation_timestamp
    )
    store.update_status(created)
    updated, action = store.apply(_backup(host="db2"))
    assert action == "configured"
    assert updated.metadata.uid == created.metadata.uid
    stored = store.get(KIND_BACKUP, "test1", "b1")
    assert isinstance(stored, Backup) and stored.status.phase == "Complete"
    assert stored.spec.from_ is not None and stored.spec.from_.host == "db2"


def test_list_by_selector_and_namespace(store: Store) -> None:
    store.apply(_backup("a", {"tidb.pingcap.com/backup-schedule": "s1"}))
    store.apply(_backup("b", {"tidb.pingcap.com/backup-schedule": "s2"}))
    picked = store.list_resources(KIND_BACKUP, "test1", parse_selector("tidb.pingcap.com/backup-schedule=s1"))
    assert [b.metadata.name for b in picked] == ["a"]
    assert store.list_resources(KIND_BACKUP, "other") == []
    assert len(store.list_resources(KIND_BACKUP, None)) == 2


def test_create_conflicts_and_delete_mark(store: Store) -> None:
    backup = store.create(_backup())
    with pytest.raises(ConflictError):
        store.create(_backup())
    marked = store.mark_deleted(backup)
    assert marked is not None and marked.metadata.deletion_timestamp is not None
    with pytest.raises(ConflictError, match="being deleted"):
        store.apply(_backup(host="x"))
    assert store.remove(backup) and store.get(KIND_BACKUP, "test1", "b1") is None


def test_events_repeat_is_counted(store: Store) -> None:
    backup = store.create(_backup())
    for _ in range(3):
        store.add_event(backup, "Warning", "Failed", "same")
    store.add_event(backup, "Normal", "Other", "x")
    events = store.events(KIND_BACKUP, "test1", "b1")
    assert [(e.reason, e.count) for e in events] == [("Failed", 3), ("Other", 1)]


def test_secrets_list_shows_no_values(store: Store) -> None:
    store.put_secret("test1", "s3-secret", {"access_key": "AK", "secret_key": "SK"})
    with pytest.raises(ConflictError):
        store.put_secret("test1", "s3-secret", {"k": "v"})
    infos = store.list_secrets("test1")
    assert [(i.name, i.keys) for i in infos] == [("s3-secret", 2)]
    assert "SK" not in repr(infos)
    assert store.delete_secret("test1", "s3-secret") and store.get_secret("test1", "s3-secret") is None


def test_run_claims_and_liveness(store: Store) -> None:
    pid = os.getpid()
    assert store.claim_run("test1", "b1", "u", pid, start_ticks(pid)) is None
    existing = store.claim_run("test1", "b1", "u", 1, 0)
    assert existing is not None and existing.pid == pid
    assert process_alive(pid, start_ticks(pid))
    assert not process_alive(pid, start_ticks(pid) + 1), "a reused pid is another process"
    store.clear_run("test1", "b1", pid)
    assert store.runs() == []
