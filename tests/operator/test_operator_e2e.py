"""End to end on the API emulator: the real kopf operator, real Jobs' commands, real MariaDB and S3.

No real cluster: kmock serves the Kubernetes API and a stand-in kubelet runs each Job's container
command locally (see harness.py). Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kmock
import pytest
from prometheus_client import generate_latest

from tests.operator.conftest import IMAGE, Cluster
from tests.operator.harness import wait_for
from tibackup.operator.kube import BACKUPS, EVENTS, JOBS, PVCS, SCHEDULES
from tibackup.resources.apigroups import TIBACKUP_GROUP

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
DB_SECRET, S3_SECRET = "backup-demo1-tidb-secret", "s3-secret"


def backup_body(name: str, mariadb: Any, s3_server: Any, bucket: str, db: str, **spec: Any) -> dict[str, Any]:
    """The seed's Ceph example (02) with its placeholders filled in for the test servers."""
    body: dict[str, Any] = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": "test1",
                     "annotations": {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"}},
        "spec": {
            "from": {"host": mariadb.host, "port": mariadb.port, "user": "root", "secretName": DB_SECRET},
            "s3": {"provider": "ceph", "secretName": S3_SECRET, "endpoint": s3_server.endpoint,
                   "bucket": bucket, "prefix": "k8s", "region": s3_server.region},
            "tableFilter": [f"{db}.*"],
            "dumpling": {"options": ["--threads=2", "--rows=1000"]},
            "storageSize": "10Gi",
        },
    }  # fmt: skip
    body["spec"].update(spec)
    return body


async def secrets(cluster: Cluster, mariadb: Any, s3_server: Any) -> None:
    await cluster.secret(DB_SECRET, password=mariadb.password)
    await cluster.secret(S3_SECRET, access_key=s3_server.access_key, secret_key=s3_server.secret_key)


def phase_of(cluster: Cluster, name: str, *phases: str) -> dict[str, Any] | None:
    body = cluster.api.get(BACKUPS, "test1", name)
    if body and (body.get("status") or {}).get("phase") in phases:
        return body
    return None


def keys(s3_server: Any, bucket: str) -> list[str]:
    found = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents") or []
    return sorted(item["Key"] for item in found)


def fill(mariadb: Any, db: str, rows: int = 500) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", database=db)
    mariadb.execute(f"INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_{rows}", database=db)


async def test_backup_becomes_job_and_completes(cluster: Cluster, mariadb: Any, s3_server: Any,
                                                bucket: str, fresh_db: str) -> None:  # fmt: skip
    fill(mariadb, fresh_db)
    await secrets(cluster, mariadb, s3_server)
    await cluster.kube.create(
        BACKUPS, "test1", backup_body("demo1-backup-s3", mariadb, s3_server, bucket, fresh_db)
    )

    job = await wait_for(lambda: cluster.api.get(JOBS, "test1", "backup-demo1-backup-s3"), 20, "the Job")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Backup", "demo1-backup-s3", True)
    assert owner["uid"]
    assert job["metadata"]["labels"]["tidb.pingcap.com/backup"] == "demo1-backup-s3"
    template_annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert template_annotations == {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"}
    assert pod["serviceAccountName"] == "tidb-backup-manager"
    [container] = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["tibackup", "job", "run-backup", "--namespace", "test1",
                                    "--name", "demo1-backup-s3"]  # fmt: skip
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["TIBACKUP_DB_PASSWORD"] == {"name": DB_SECRET, "key": "password", "optional": True}
    assert refs["TIBACKUP_S3_ACCESS_KEY"]["name"] == S3_SECRET
    assert refs["TIBACKUP_S3_SECRET_KEY"]["key"] == "secret_key"
    text = json.dumps(job)
    for secret_value in (mariadb.password, s3_server.access_key, s3_server.secret_key):
        assert secret_value not in text
    pvc = await cluster.kube.get(PVCS, "test1", "backup-demo1-backup-s3")
    assert pvc is not None and pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert {"name": "staging", "persistentVolumeClaim": {"claimName": "backup-demo1-backup-s3"}} in pod[
        "volumes"
    ]

    done = await wait_for(lambda: phase_of(cluster, "demo1-backup-s3", "Complete", "Failed", "Invalid"),
                          90, "the backup to finish")  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Complete", (status, cluster.kubelet.logs.get("backup-demo1-backup-s3"))
    assert status["backupPath"].startswith(f"s3://{bucket}/k8s/backup-")
    assert status["backupSize"] > 0 and status["commitTs"]
    assert [c["type"] for c in status["conditions"]][:1] == ["Scheduled"]
    stored = keys(s3_server, bucket)
    assert any(k.endswith("/metadata") for k in stored)
    assert any(k.endswith(f"/{fresh_db}.t.000000000.sql") or f"/{fresh_db}.t." in k for k in stored)
    # Uploaded and done: the staging volume is given back.
    await wait_for(
        lambda: cluster.api.get(PVCS, "test1", "backup-demo1-backup-s3") is None, 10, "PVC deletion"
    )

    # Deleting it with the default cleanPolicy (Retain) keeps the data and releases the finalizer.
    await cluster.kube.delete(BACKUPS, "test1", "demo1-backup-s3")
    await wait_for(lambda: cluster.api.get(BACKUPS, "test1", "demo1-backup-s3") is None, 20, "deletion")
    assert keys(s3_server, bucket) == stored


async def test_oom_killed_job_fails_the_backup(cluster: Cluster) -> None:
    cluster.kubelet.kill["backup-oom"] = "OOMKilled"
    body = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
        "metadata": {"name": "oom", "namespace": "test1"},
        "spec": {"from": {"host": "db", "secretName": DB_SECRET},
                 "s3": {"provider": "aws", "bucket": "some-bucket", "region": "us-east-1"}},
    }  # fmt: skip
    await cluster.kube.create(BACKUPS, "test1", body)
    failed = await wait_for(lambda: phase_of(cluster, "oom", "Failed"), 20, "Failed")
    condition = next(c for c in failed["status"]["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "JobFailed"
    assert "OOMKilled" in condition["message"] and "BackoffLimitExceeded" in condition["message"]
    # A Backup that never wrote anything is deleted at once, whatever its cleanPolicy.
    await cluster.kube.patch(BACKUPS, "test1", "oom", {"spec": {"cleanPolicy": "Delete"}})
    await cluster.kube.delete(BACKUPS, "test1", "oom")
    await wait_for(lambda: cluster.api.get(BACKUPS, "test1", "oom") is None, 20, "deletion")


async def test_invalid_backup_gets_no_job(cluster: Cluster) -> None:
    body = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
        "metadata": {"name": "bad", "namespace": "test1"},
        "spec": {"from": {"host": "db", "secretName": DB_SECRET},
                 "s3": {"provider": "ceph", "bucket": "b/with/slash", "endpoint": "x:80"}},
    }  # fmt: skip
    await cluster.kube.create(BACKUPS, "test1", body)
    invalid = await wait_for(lambda: phase_of(cluster, "bad", "Invalid"), 20, "Invalid")
    assert "spec.s3.bucket" in invalid["status"]["conditions"][-1]["message"]
    assert await cluster.kube.get(JOBS, "test1", "backup-bad") is None
    await cluster.kube.delete(BACKUPS, "test1", "bad")
    await wait_for(lambda: cluster.api.get(BACKUPS, "test1", "bad") is None, 20, "deletion")


@pytest.mark.parametrize("policy", ["Delete", "OnFailure"])
async def test_delete_with_clean_policy(cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str,
                                        fresh_db: str, policy: str) -> None:  # fmt: skip
    fill(mariadb, fresh_db, 50)
    await secrets(cluster, mariadb, s3_server)
    body = backup_body("to-clean", mariadb, s3_server, bucket, fresh_db, cleanPolicy=policy)
    del body["spec"]["storageSize"]  # direct mode: no staging volume
    await cluster.kube.create(BACKUPS, "test1", body)
    done = await wait_for(lambda: phase_of(cluster, "to-clean", "Complete", "Failed"), 90, "the backup")
    assert done["status"]["phase"] == "Complete", cluster.kubelet.logs.get("backup-to-clean")
    assert await cluster.kube.get(PVCS, "test1", "backup-to-clean") is None
    stored = keys(s3_server, bucket)
    assert stored
    await cluster.kube.delete(BACKUPS, "test1", "to-clean")
    await wait_for(lambda: cluster.api.get(BACKUPS, "test1", "to-clean") is None, 60, "deletion")
    if policy == "Delete":
        assert await cluster.kube.get(JOBS, "test1", "clean-to-clean") is not None
        assert cluster.kubelet.exit_codes.get("clean-to-clean") == 0, cluster.kubelet.logs.get(
            "clean-to-clean"
        )
        assert keys(s3_server, bucket) == []
    else:  # OnFailure keeps a successful backup's data
        assert await cluster.kube.get(JOBS, "test1", "clean-to-clean") is None
        assert keys(s3_server, bucket) == stored


async def test_schedule_creates_and_prunes_backups(cluster: Cluster, mariadb: Any, s3_server: Any,
                                                   bucket: str, fresh_db: str) -> None:  # fmt: skip
    fill(mariadb, fresh_db, 20)
    await secrets(cluster, mariadb, s3_server)
    template = backup_body("x", mariadb, s3_server, bucket, fresh_db)["spec"]
    del template["storageSize"]
    schedule = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "BackupSchedule",
        "metadata": {"name": "nightly", "namespace": "test1"},
        "spec": {"schedule": "@every 2s", "maxBackups": 1, "backupTemplate": template},
    }  # fmt: skip
    await cluster.kube.create(SCHEDULES, "test1", schedule)

    def complete_backups() -> list[str]:
        found = cluster.api.list(BACKUPS, "test1", {"tidb.pingcap.com/backup-schedule": "nightly"})
        return [b["metadata"]["name"] for b in found if (b.get("status") or {}).get("phase") == "Complete"]

    created: set[str] = set()

    def two_created_one_kept() -> bool:
        found = cluster.api.list(BACKUPS, "test1", {"tidb.pingcap.com/backup-schedule": "nightly"})
        created.update(b["metadata"]["name"] for b in found)
        return len(created) >= 2 and len(complete_backups()) == 1 and len(found) <= 2

    await wait_for(two_created_one_kept, 120, "two backups, the older one pruned")
    [kept] = await asyncio.to_thread(complete_backups)
    assert kept.startswith("nightly-")
    body = await cluster.kube.get(BACKUPS, "test1", kept)
    assert body is not None
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "backup-schedule-operator"
    assert body["metadata"]["ownerReferences"][0]["kind"] == "BackupSchedule"
    status = (await cluster.kube.get(SCHEDULES, "test1", "nightly") or {}).get("status") or {}
    assert status.get("lastBackup", "").startswith("nightly-") and status.get("nextBackupTime")
    metrics = generate_latest(cluster.metrics.registry).decode()
    assert 'tibackup_schedule_last_backup_success{namespace="test1",schedule="nightly"} 1.0' in metrics
    await cluster.kube.patch(SCHEDULES, "test1", "nightly", {"spec": {"pause": True}})


@pytest.mark.parametrize("cluster", [TIBACKUP_GROUP], indirect=True)
async def test_beside_tidb_operator_serves_its_own_group_only(cluster: Cluster, mariadb: Any, s3_server: Any,
                                                              bucket: str, fresh_db: str) -> None:  # fmt: skip
    """The operator serving backup.tibackup.io runs those Backups (its Jobs under the overlay's Role) and
    never touches TiDB Operator's pingcap.com Backups; an upstream spec.toolImage is ignored, with a Warning."""
    theirs = kmock.resource("pingcap.com", "v1alpha1", "backups")
    cluster.server.resources[theirs] = kmock.ResourceInfo(
        kind="Backup", namespaced=True, verbs={"list", "get"}
    )
    upstream = backup_body("tidb-operators", mariadb, s3_server, bucket, fresh_db)
    cluster.server.objects[theirs, "test1", "tidb-operators"] = upstream
    fill(mariadb, fresh_db)
    await secrets(cluster, mariadb, s3_server)
    ours = backup_body("ours", mariadb, s3_server, bucket, fresh_db, toolImage="pingcap/dumpling:v8.1.0")
    ours["apiVersion"] = "backup.tibackup.io/v1alpha1"
    await cluster.kube.create(BACKUPS, "test1", ours)

    job = await wait_for(lambda: cluster.api.get(JOBS, "test1", "backup-ours"), 20, "the Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert {"name": "TIBACKUP_API_GROUP", "value": TIBACKUP_GROUP} in container["env"]
    assert job["metadata"]["ownerReferences"][0]["apiVersion"] == "backup.tibackup.io/v1alpha1"
    done = await wait_for(
        lambda: phase_of(cluster, "ours", "Complete", "Failed", "Invalid"), 90, "the backup"
    )
    assert done["status"]["phase"] == "Complete", (done["status"], cluster.kubelet.logs.get("backup-ours"))
    events = await cluster.kube.list(EVENTS, "test1")
    ignored = [e for e in events if e["reason"] == "IgnoredField" and e["involvedObject"]["name"] == "ours"]
    assert ignored and "spec.toolImage" in ignored[0]["message"] and ignored[0]["type"] == "Warning"
    assert await cluster.kube.get(JOBS, "test1", "backup-tidb-operators") is None
    assert "status" not in cluster.server.objects[theirs, "test1", "tidb-operators"]


async def test_deleted_schedule_leaves_no_series(cluster: Cluster) -> None:
    """A deleted schedule must not keep exporting its last success (it would alert 25 h later)."""
    schedule = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "BackupSchedule",
        "metadata": {"name": "gone", "namespace": "test1"},
        "spec": {"schedule": "@daily", "pause": True, "backupTemplate": {
            "from": {"host": "db", "secretName": DB_SECRET}, "s3": {"provider": "ceph", "bucket": "backups", "endpoint": "http://127.0.0.1:9"}}},
    }  # fmt: skip
    await cluster.kube.create(SCHEDULES, "test1", schedule)
    series = 'tibackup_schedule_last_success_timestamp_seconds{namespace="test1",schedule="gone"} 0.0'
    await wait_for(lambda: series in generate_latest(cluster.metrics.registry).decode(), 20, "the series")
    await cluster.kube.delete(SCHEDULES, "test1", "gone")

    def gone() -> bool:
        return 'schedule="gone"' not in generate_latest(cluster.metrics.registry).decode()

    await wait_for(gone, 20, "the series to go")
