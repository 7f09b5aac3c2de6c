"""The operator on the API emulator: a GC life time restore left pending is retried until it succeeds;
a re-run annotation runs a Failed Backup again in a new Job.

A Backup ended Failed while its database could not be reached, so its GC record (the annotation
``tibackup.pingcap.com/gc-record``) is still there. The operator's timer runs recover Jobs until the
value is restored: the first one meets a database without the GC table and leaves the condition
``GCLifeTimeRestorePending`` with the error; once the table is there, the next one restores the value,
removes the record and the condition, and the Backup stays Failed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.operator.conftest import Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import backup_body, fill, phase_of, secrets
from tibackup.control.rerun import RERUN_ANNOTATION
from tibackup.operator.backups import job_outcome
from tibackup.operator.jobs import ANNOTATION_GC_RECORD
from tibackup.operator.kube import BACKUPS, EVENTS, JOBS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
PENDING = "GCLifeTimeRestorePending"


@pytest.fixture()
def no_gc_table(mariadb: Any) -> Iterator[None]:
    mariadb.execute("DROP TABLE IF EXISTS mysql.tidb")
    try:
        yield
    finally:
        mariadb.execute("DROP TABLE IF EXISTS mysql.tidb")


def _condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((body or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _with_gc_record(body: dict[str, Any], mariadb: Any) -> dict[str, Any]:
    """A direct-mode Backup whose run raised the GC life time from 10m0s to 72h (the record is kept)."""
    del body["spec"]["storageSize"]
    record = {"variable": "tikv_gc_life_time", "value": "10m0s", "raisedTo": "72h",
              "host": mariadb.host, "port": mariadb.port, "savedAt": "2026-12-01T08:00:00Z"}  # fmt: skip
    body["metadata"]["annotations"][ANNOTATION_GC_RECORD] = json.dumps(record)
    return body


async def test_pending_gc_restore_is_retried_until_it_succeeds(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str, no_gc_table: None
) -> None:
    fill(mariadb, fresh_db, 10)
    await secrets(cluster, mariadb, s3_server)
    body = _with_gc_record(backup_body("gc-left", mariadb, s3_server, bucket, fresh_db), mariadb)
    body["status"] = {
        "phase": "Failed",
        "conditions": [{"type": "Failed", "status": "True", "reason": "ConnectionFailed",
                        "message": "cannot connect", "lastTransitionTime": "2026-12-01T08:00:01Z"}],
    }  # fmt: skip
    await cluster.kube.create(BACKUPS, "test1", body)

    # First retry: the database answers but has no GC table: the restore stays pending, with the error.
    pending = await wait_for(
        lambda: _condition(cluster.api.get(BACKUPS, "test1", "gc-left"), PENDING), 60, "the pending condition"
    )
    assert pending["reason"] == "GCLifeTimeNotRestored"
    assert "releasing it (back to 10m0s unless other running backups hold it) failed" in pending["message"], pending
    await wait_for(lambda: cluster.kubelet.exit_codes.get("recover-gc-left") == 1, 30, "the Job to fail")
    assert await cluster.kube.get(JOBS, "test1", "backup-gc-left") is None  # no backup ran

    # The database is fixed: a later retry restores the value, drops the record and the condition.
    mariadb.execute(
        "CREATE TABLE mysql.tidb (VARIABLE_NAME varchar(64) PRIMARY KEY, "
        "VARIABLE_VALUE varchar(1024), COMMENT varchar(1024))"
    )
    mariadb.execute("INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '72h', 'stand-in')")

    def restored() -> dict[str, Any] | None:
        current = cluster.api.get(BACKUPS, "test1", "gc-left")
        annotations = ((current or {}).get("metadata") or {}).get("annotations") or {}
        if current and ANNOTATION_GC_RECORD not in annotations and _condition(current, PENDING) is None:
            return current
        return None

    done = await wait_for(restored, 60, "the GC life time to be restored")
    assert (
        mariadb.execute("SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'")[0][
            0
        ]
        == "10m0s"
    )
    assert done["status"]["phase"] == "Failed"
    assert _condition(done, "Failed")["reason"] == "ConnectionFailed"  # type: ignore[index]
    await wait_for(lambda: cluster.kubelet.exit_codes.get("recover-gc-left") == 0, 30, "the Job to succeed")
    await cluster.kube.delete(BACKUPS, "test1", "gc-left")
    await wait_for(lambda: cluster.api.get(BACKUPS, "test1", "gc-left") is None, 20, "deletion")


def _finished_job(cluster: Cluster, name: str) -> dict[str, Any] | None:
    job = cluster.api.get(JOBS, "test1", name)
    return job if job is not None and job_outcome(job) is not None else None


def _reasons(cluster: Cluster, name: str) -> list[str]:
    found = cluster.api.list(EVENTS, "test1")
    return [e.get("reason", "") for e in found if (e.get("involvedObject") or {}).get("name") == name]


async def test_rerun_annotation_starts_a_new_job(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str
) -> None:
    fill(mariadb, fresh_db, 20)
    await secrets(cluster, mariadb, s3_server)
    body = backup_body("again", mariadb, s3_server, bucket, fresh_db)
    body["spec"]["from"]["user"] = "nobody-here"
    await cluster.kube.create(BACKUPS, "test1", body)
    failed = await wait_for(lambda: phase_of(cluster, "again", "Failed", "Complete"), 90, "the first run")
    assert _condition(failed, "Failed")["reason"] == "AccessDenied"  # type: ignore[index]
    # The kubelet stand-in records the Job's end by name: wait for it, or it would land on the new Job.
    first = await wait_for(
        lambda: _finished_job(cluster, "backup-again"), 30, "the first Job to be marked failed"
    )

    # Fix the spec and ask for a re-run, as `kubectl annotate --overwrite … tibackup.pingcap.com/rerun=1`.
    patch = {"metadata": {"annotations": {RERUN_ANNOTATION: "1"}}, "spec": {"from": {"user": "root"}}}
    await cluster.kube.patch(BACKUPS, "test1", "again", patch)

    def new_job() -> dict[str, Any] | None:
        job = cluster.api.get(JOBS, "test1", "backup-again")
        return job if job and job["metadata"]["uid"] != first["metadata"]["uid"] else None

    second = await wait_for(new_job, 30, "a new Job")
    done = await wait_for(lambda: phase_of(cluster, "again", "Complete", "Failed"), 90, "the re-run")
    assert done["status"]["phase"] == "Complete", cluster.kubelet.logs.get("backup-again")
    assert done["status"]["rerunToken"] == "1"
    assert _condition(done, "Failed") is None  # the reset started a clean history
    assert "RerunRequested" in await asyncio.to_thread(_reasons, cluster, "again")

    # A Complete Backup is not run again: the request is refused and recorded.
    await cluster.kube.patch(
        BACKUPS, "test1", "again", {"metadata": {"annotations": {RERUN_ANNOTATION: "2"}}}
    )
    await wait_for(lambda: "RerunRefused" in _reasons(cluster, "again"), 30, "the refusal")
    current = await cluster.kube.get(BACKUPS, "test1", "again")
    assert current is not None and current["status"]["phase"] == "Complete"
    assert current["status"]["rerunToken"] == "2"
    job = await cluster.kube.get(JOBS, "test1", "backup-again")
    assert job is not None and job["metadata"]["uid"] == second["metadata"]["uid"]


async def test_job_killed_after_verification_is_recovered_as_complete(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str, no_gc_table: None
) -> None:
    """A backup Job killed after its run verified the folder (condition Verified) but before Complete:
    the operator said Failed/JobFailed; its recover Job restores the GC life time and records Complete."""
    mariadb.execute(
        "CREATE TABLE mysql.tidb (VARIABLE_NAME varchar(64) PRIMARY KEY, "
        "VARIABLE_VALUE varchar(1024), COMMENT varchar(1024))"
    )
    mariadb.execute("INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '72h', 'stand-in')")
    await secrets(cluster, mariadb, s3_server)
    body = _with_gc_record(backup_body("killed-late", mariadb, s3_server, bucket, fresh_db), mariadb)
    path = f"s3://{bucket}/killed-late/backup-2026-12-01T08:00:00Z/"
    body["status"] = {
        "phase": "Failed", "backupPath": path, "backupSize": 1234, "commitTs": "123",
        "timeStarted": "2026-12-01T08:00:00Z",
        "conditions": [
            {"type": "Running", "status": "True", "reason": "Running", "lastTransitionTime": "2026-12-01T08:00:00Z"},
            {"type": "Verified", "status": "True", "reason": "Verified", "message": f"backed up 1.2 KiB to {path}",
             "lastTransitionTime": "2026-12-01T08:00:05Z"},
            {"type": "Failed", "status": "True", "reason": "JobFailed", "message": "the Job died",
             "lastTransitionTime": "2026-12-01T08:00:06Z"},
        ],
    }  # fmt: skip
    await cluster.kube.create(BACKUPS, "test1", body)

    def recovered() -> dict[str, Any] | None:  # Complete, the GC life time restored (retried if need be)
        done = phase_of(cluster, "killed-late", "Complete")
        annotations = ((done or {}).get("metadata") or {}).get("annotations") or {}
        return (
            done
            if done and ANNOTATION_GC_RECORD not in annotations and not _condition(done, PENDING)
            else None
        )

    done = await wait_for(recovered, 60, "the recover Job to record Complete and restore the GC life time")
    assert _condition(done, "Failed") is None, done["status"]
    complete = _condition(done, "Complete") or {}
    assert f"backed up 1.2 KiB to {path}" in complete.get("message", "")
    assert "stopped after verifying it" in complete.get("message", "")
    assert done["status"]["backupSize"] == 1234
    assert (
        mariadb.execute("SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'")[0][
            0
        ]
        == "10m0s"
    )
    assert await cluster.kube.get(JOBS, "test1", "backup-killed-late") is None  # no backup ran
    await cluster.kube.delete(BACKUPS, "test1", "killed-late")
    await wait_for(lambda: cluster.api.get(BACKUPS, "test1", "killed-late") is None, 20, "deletion")
