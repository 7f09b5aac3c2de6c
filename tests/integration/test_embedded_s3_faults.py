"""Embedded Backups whose S3 server dies mid-upload (direct and staged): the Failed message says uploads
remain, and once S3 is back the next controller pass, a delete or a re-run aborts them all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import SeaweedFSServer

from tests.integration.faults import (
    PartGate,
    apply_wait_process,
    dedicated_s3,
    kill_s3,
    load_big_table,
    restart_s3,
    uploads,
)
from tests.integration.test_embedded_cli import DB_PASSWORD_SECRET, S3_SECRET, Env, backup_doc
from tibackup.embedded.controller import Controller
from tibackup.embedded.runtime import EmbeddedRuntime
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.manager.run import run_backup
from tibackup.resources import Backup

pytestmark = pytest.mark.integration

STAGED = {"tibackup.pingcap.com/mode": "staged"}


@pytest.fixture()
def faults_env(
    tmp_path: Path, mariadb: MariaDBServer, fresh_db: str
) -> Iterator[tuple[Env, SeaweedFSServer, PartGate]]:
    load_big_table(mariadb, fresh_db)
    with dedicated_s3(tmp_path) as s3, contextlib.closing(PartGate(s3)) as gate:
        env = Env(tmp_path / "state", "faults", fresh_db, mariadb, s3)
        for name, literals in (
            (S3_SECRET, [f"access_key={s3.access_key}", f"secret_key={s3.secret_key}"]),
            (DB_PASSWORD_SECRET, [f"password={mariadb.password}"]),
        ):
            flags = [f"--from-literal={literal}" for literal in literals]
            assert env.tib("create", "secret", "generic", name, "-n", "test1", *flags).code == 0
        yield env, s3, gate


def run_until_s3_dies(env: Env, s3: SeaweedFSServer, gate: PartGate, doc: dict[str, object]) -> Backup:
    """``apply --wait`` in its own process, S3 behind a gate; S3 is killed while a multipart upload is
    certainly open (its first part held back by the gate: watching S3 for an upload instead was a race
    a fast writer lost now and then, by completing its upload between two looks)."""
    doc["spec"]["s3"]["endpoint"] = gate.endpoint  # type: ignore[index]  # every later pass goes through it
    process = apply_wait_process(env.state, doc)
    try:
        gate.wait_held(120)
    except AssertionError:
        process.kill()
        raise AssertionError(f"no upload reached S3: {process.communicate()[1][-2000:]}") from None
    kill_s3(s3)
    gate.drop_held()
    _, stderr = process.communicate(timeout=180)
    assert "Traceback" not in stderr, stderr
    backup = Store(env.state).get(KIND_BACKUP, "test1", str(doc["metadata"]["name"]))  # type: ignore[index]
    assert isinstance(backup, Backup)
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.message, backup.status
    assert "could not be aborted" in failed.message and "controller aborts them" in failed.message
    restart_s3(s3)  # same port and data: the orphans are there
    assert uploads(s3), "the kill left no unfinished upload: nothing was tested"
    return backup


def journal_files(env: Env) -> list[Path]:
    return list((env.state / "uploads").rglob("*.json"))


def test_direct_backup_s3_killed_then_controller_pass_aborts(faults_env: tuple[Env, SeaweedFSServer, PartGate]) -> None:
    env, s3, gate = faults_env
    run_until_s3_dies(env, s3, gate, backup_doc(env, "direct", dumpling={"options": ["--threads=1"]}))
    assert journal_files(env)
    controller = Controller(env.state)
    try:
        controller.tick()
    finally:
        controller.store.close()
    assert uploads(s3) == []
    assert journal_files(env) == []
    backup = Store(env.state).get(KIND_BACKUP, "test1", "direct")
    assert isinstance(backup, Backup)
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.message and "could not be aborted" not in failed.message
    assert "aborted later" in failed.message
    described = env.tib("describe", "bk", "direct", "-n", "test1")
    assert "UploadsAborted" in described.out, described


def test_staged_backup_s3_killed_then_delete_aborts(faults_env: tuple[Env, SeaweedFSServer, PartGate]) -> None:
    env, s3, gate = faults_env
    doc = backup_doc(env, "staged", dumpling={"options": ["--threads=1"]})
    doc["metadata"]["annotations"] = STAGED  # type: ignore[index]
    run_until_s3_dies(env, s3, gate, doc)
    result = env.tib("delete", "bk", "staged", "-n", "test1")  # cleanPolicy Retain: the files stay
    assert result.code == 0, result
    assert uploads(s3) == []
    assert journal_files(env) == []


def test_staged_backup_s3_killed_then_rerun_aborts_and_completes(
    faults_env: tuple[Env, SeaweedFSServer, PartGate],
) -> None:
    env, s3, gate = faults_env
    doc = backup_doc(env, "again", dumpling={"options": ["--threads=1"]})
    doc["metadata"]["annotations"] = STAGED  # type: ignore[index]
    failed = run_until_s3_dies(env, s3, gate, doc)
    # The manager's run of the same Backup again (how a re-run is asked for is the runtimes' business):
    # the staged dump is reused, and what the killed upload left is aborted before uploading again.
    store = Store(env.state)
    try:
        backup = run_backup(failed, EmbeddedRuntime(store))
    finally:
        store.close()
    assert backup.status.phase == "Complete", backup.status
    assert uploads(s3) == []
    assert journal_files(env) == []
