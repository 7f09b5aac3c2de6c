"""A Backup stopped between claiming its folder and ``Running`` (docs/guarantees-folders.md, "A run stopped
mid-claim"): no folder is left that no Backup knows about, whatever stops it, and taking a claim back never
touches a folder another Backup owns.

Deterministic: the Backup's S3 endpoint is a gate (tests/integration/faults.py) that holds the claim's
second listing, so the gate and evidence are on the server and ``Running`` is not yet recorded when the
stop comes; no timing luck."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.integration.faults import AfterClaimEvidence, RequestGate, apply_wait_process
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture
from tests.integration.test_embedded_controller import controller, stop, wait_for
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.manager import claim
from tibackup.resources import Backup, Phase, set_condition
from tibackup.storage import S3Options, S3Storage

__all__ = ["env_fixture"]
pytestmark = pytest.mark.integration


@contextlib.contextmanager
def claim_gate(env: Env) -> Iterator[RequestGate]:
    gate = RequestGate(env.s3, AfterClaimEvidence())
    try:
        yield gate
    finally:
        gate.close()


def apply_held_backup(env: Env, gate: RequestGate, name: str, **spec: object) -> None:
    doc = backup_doc(env, name, **spec)
    doc["spec"]["s3"]["endpoint"] = gate.endpoint
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0


def stored(env: Env, name: str) -> Backup:
    store = Store(env.state)
    try:
        backup = store.get(KIND_BACKUP, "test1", name)
    finally:
        store.close()
    assert isinstance(backup, Backup)
    return backup


def claim_files_of_one_folder(env: Env) -> list[str]:
    keys = env.s3.list_keys(env.bucket)
    assert len({key.split("/", 1)[0] for key in keys}) == 1, keys
    return [key.split("/", 1)[1] for key in keys]


def test_controller_stopped_between_claim_and_running_takes_the_claim_back(env: Env, tmp_path: Path) -> None:
    """The CI failure: SIGTERM to the controller (so to its run) while the claim is won but not recorded.
    On the old code the folder kept its gate and evidence and the Backup had no backupPath."""
    with claim_gate(env) as gate:
        apply_held_backup(env, gate, "held", cleanPolicy="Retain")
        with controller(env, tmp_path / "controller.log") as process:
            gate.wait_held(60)
            names = claim_files_of_one_folder(env)
            assert len(names) == 2 and all(claim.is_claim(n) for n in names), names  # gate and evidence
            assert stop(process) == 0
    assert env.s3.list_keys(env.bucket) == []  # taken back by the stopped run itself, even with Retain
    backup = stored(env, "held")
    failed = backup.status.condition(Phase.FAILED)
    assert backup.status.phase == Phase.FAILED and failed is not None and failed.reason == "Interrupted"
    assert not backup.status.backup_path and not backup.status.claim_path


def test_run_killed_between_claim_and_running_is_released_by_recovery(env: Env, tmp_path: Path) -> None:
    """SIGKILL (OOM, a killed Pod, the controller's kill after its grace period): nothing runs in the
    process, so the record made before the gate is what lets the controller's recovery take it back."""
    with claim_gate(env) as gate:
        apply_held_backup(env, gate, "killed")
        with controller(env, tmp_path / "controller.log") as process:
            gate.wait_held(60)
            store = Store(env.state)
            try:
                (record,) = [r for r in store.runs() if r.name == "killed"]
            finally:
                store.close()
            assert claim_files_of_one_folder(env)
            os.kill(record.pid, signal.SIGKILL)
            gate.drop_held()
            wait_for(lambda: stored(env, "killed").status.phase == Phase.FAILED, 60, "recovery of the run")
            assert stop(process) == 0
    assert env.s3.list_keys(env.bucket) == []
    backup = stored(env, "killed")
    assert not backup.status.backup_path and not backup.status.claim_path


def s3_root(env: Env) -> S3Storage:
    return S3Storage(
        S3Options(
            bucket=env.bucket,
            endpoint=env.s3.endpoint,
            access_key=env.s3.access_key,
            secret_key=env.s3.secret_key,
            region=env.s3.region,
            force_path_style=True,
        )
    )


def failed_mid_claim(env: Env, name: str, policy: str) -> dict[str, object]:
    """A Backup as a run killed mid-claim, with no recovery after it, leaves it: Failed (Interrupted);
    returns its claim document (whose uid the claim files carry)."""
    assert env.tib("apply", "-f", "-", stdin=env.backup_yaml(name, cleanPolicy=policy)).code == 0
    backup = stored(env, name)
    store = Store(env.state)
    try:
        backup.status = set_condition(backup.status, Phase.FAILED, "Interrupted", "killed", datetime.now(UTC))
        store.update_status(backup)
    finally:
        store.close()
    return {"namespace": "test1", "name": name, "uid": backup.metadata.uid}


def record_claim(env: Env, name: str, folder: str) -> None:
    store = Store(env.state)
    try:
        backup = stored(env, name)
        backup.status = backup.status.model_copy(update={"claim_path": f"s3://{env.bucket}/{folder}/"})
        store.update_status(backup)
    finally:
        store.close()


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_delete_releases_the_claim_of_a_stopped_run_and_nothing_another_backup_owns(
    env: Env, policy: str
) -> None:
    """Deletion takes back the claim files named by claimPath, whatever the cleanPolicy; a claimPath
    that names a folder another Backup won (this one lost it, or released it and it was claimed again)
    leaves that folder exactly as it is."""
    root = s3_root(env)
    try:
        candidates = iter(["backup-2024-03-01T02:00:00Z", "backup-2024-03-01T02:00:00Z-2"])
        mine = claim.claim_folder(root, candidates, failed_mid_claim(env, "stopped", policy))
        record_claim(env, "stopped", mine)
        failed_mid_claim(env, "lost", policy)
        other = claim.claim_folder(
            root, candidates, {"namespace": "test1", "name": "owner", "uid": "u-owner"}
        )
        root.put(f"{other}/metadata", b"the owner's backup")
        record_claim(env, "lost", other)
        theirs = sorted(i.name for i in root.list(other + "/"))
        for name in ("stopped", "lost"):
            result = env.tib("delete", "bk", name, "-n", "test1")
            assert result.code == 0, result
        assert [i.name for i in root.list(mine + "/")] == []
        assert sorted(i.name for i in root.list(other + "/")) == theirs
    finally:
        root.close()


def test_rerun_releases_the_claim_a_killed_run_left_before_claiming_anew(env: Env) -> None:
    """A re-run records its own candidate over claimPath: it takes the earlier claim back first, or that
    folder would be forgotten."""
    root = s3_root(env)
    try:
        left = claim.claim_folder(
            root, iter(["backup-2024-03-01T02:00:00Z"]), failed_mid_claim(env, "again", "Retain")
        )
        record_claim(env, "again", left)
        result = env.tib("rerun", "bk", "again", "-n", "test1", "--wait")
        assert result.code == 0, result
        assert [i.name for i in root.list(left + "/")] == []
        backup = stored(env, "again")
        assert backup.status.phase == Phase.COMPLETE and not backup.status.claim_path
        folders = {info.name.split("/", 1)[0] for info in root.list()}
        assert folders == {(backup.status.backup_path or "").removeprefix(f"s3://{env.bucket}/").rstrip("/")}
    finally:
        root.close()


def first_sql_file(window: bytes) -> bool:
    return re.search(rb"PUT \S+\.sql(\?\S*)? HTTP/1", window) is not None


def test_direct_rerun_empties_the_failed_runs_folder_it_replaces(env: Env) -> None:
    """A direct-mode re-run dumps to a new folder; the failed run's folder, which its backupPath named,
    would be known to no Backup after it. It is emptied first (files, then its claim)."""
    with contextlib.closing(RequestGate(env.s3, first_sql_file)) as gate:
        doc = backup_doc(env, "twice", cleanPolicy="Retain")
        doc["spec"]["s3"]["endpoint"] = gate.endpoint
        process = apply_wait_process(env.state, doc)
        gate.wait_held(60)  # Running, its folder claimed, the first file on its way
        process.send_signal(signal.SIGTERM)
        gate.drop_held()
        assert process.wait(timeout=60) == 130
        first = stored(env, "twice")
        assert first.status.phase == Phase.FAILED and first.status.backup_path
        old = first.status.backup_path.removeprefix(f"s3://{env.bucket}/")
        assert env.s3.list_keys(env.bucket, old)  # the failed run's claim (and whatever it wrote)
        result = env.tib("rerun", "bk", "twice", "-n", "test1", "--wait")
        assert result.code == 0, result
    again = stored(env, "twice")
    assert again.status.phase == Phase.COMPLETE and again.status.backup_path != first.status.backup_path
    assert env.s3.list_keys(env.bucket, old) == []
    new = (again.status.backup_path or "").removeprefix(f"s3://{env.bucket}/")
    assert {key.split("/", 1)[0] for key in env.s3.list_keys(env.bucket)} == {new.rstrip("/")}
