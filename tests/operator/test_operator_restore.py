"""Restores on the API emulator: the real kopf operator makes a Job ``restore-<name>`` per Restore (the
Backup Jobs' rules), the Job's real command loads the backup into the real MariaDB, a failed Job fails the
Restore without a retry, deleting the Restore deletes its Job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.dumputil import checksums
from tests.operator.conftest import IMAGE, Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import DB_SECRET, S3_SECRET, backup_body, fill, phase_of, secrets
from tibackup.operator.kube import BACKUPS, EVENTS, JOBS, RESTORES
from tibackup.resources.apigroups import TIBACKUP_GROUP

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]


def restore_body(name: str, mariadb: Any, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": "test1",
                     "annotations": {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"}},
        "spec": {"backupType": "full",
                 "to": {"host": mariadb.host, "port": mariadb.port, "user": "root", "secretName": DB_SECRET},
                 **spec},
    }  # fmt: skip


def restore_phase(cluster: Cluster, name: str, *phases: str) -> dict[str, Any] | None:
    body = cluster.api.get(RESTORES, "test1", name)
    if body and (body.get("status") or {}).get("phase") in phases:
        return body
    return None


async def test_restore_becomes_job_and_loads_the_backup(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str
) -> None:
    fill(mariadb, fresh_db, 300)
    await secrets(cluster, mariadb, s3_server)
    await cluster.kube.create(BACKUPS, "test1", backup_body("nightly", mariadb, s3_server, bucket, fresh_db))
    await wait_for(lambda: phase_of(cluster, "nightly", "Complete"), 90, "the backup")
    before = checksums(mariadb, fresh_db, ["t"])
    mariadb.execute(f"DROP TABLE `{fresh_db}`.t")  # the target: the same database, emptied

    await cluster.kube.create(
        RESTORES, "test1", restore_body("back", mariadb, tibackup={"fromBackup": "nightly"})
    )
    job = await wait_for(lambda: cluster.api.get(JOBS, "test1", "restore-back"), 20, "the Job")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Restore", "back", True)
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    assert job["spec"]["template"]["metadata"]["annotations"] == {
        "iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"
    }
    [container] = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == [
        "tibackup",
        "job",
        "run-restore",
        "--namespace",
        "test1",
        "--name",
        "back",
    ]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["TIBACKUP_DB_PASSWORD"] == {"name": DB_SECRET, "key": "password", "optional": True}
    assert refs["TIBACKUP_S3_ACCESS_KEY"]["name"] == S3_SECRET  # the fromBackup Backup's S3 Secret
    for secret_value in (mariadb.password, s3_server.access_key, s3_server.secret_key):
        assert secret_value not in json.dumps(job)

    done = await wait_for(
        lambda: restore_phase(cluster, "back", "Complete", "Failed", "Invalid"), 90, "restore"
    )
    status = done["status"]
    assert status["phase"] == "Complete", (status, cluster.kubelet.logs.get("restore-back"))
    assert [c["type"] for c in status["conditions"]][:2] == ["Scheduled", "Running"]
    assert status["restoredRows"] == 300 and status["commitTs"]
    assert checksums(mariadb, fresh_db, ["t"]) == before

    await cluster.kube.delete(RESTORES, "test1", "back")
    await wait_for(lambda: cluster.api.get(RESTORES, "test1", "back") is None, 20, "deletion")
    assert await cluster.kube.get(JOBS, "test1", "restore-back") is None
    assert checksums(mariadb, fresh_db, ["t"]) == before  # the target keeps its rows


async def test_failed_restore_job_fails_the_restore_once(cluster: Cluster, mariadb: Any) -> None:
    cluster.kubelet.kill["restore-oom"] = "OOMKilled"
    s3 = {"provider": "aws", "region": "us-east-1", "path": "s3://some-bucket/backup-x/"}
    await cluster.kube.create(RESTORES, "test1", restore_body("oom", mariadb, s3=s3))
    failed = await wait_for(lambda: restore_phase(cluster, "oom", "Failed"), 20, "Failed")
    condition = next(c for c in failed["status"]["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "JobFailed" and "OOMKilled" in condition["message"]
    assert "tibackup.pingcap.com/rerun" in condition["message"]
    jobs = [j for j in await cluster.kube.list(JOBS, "test1") if j["metadata"]["name"] == "restore-oom"]
    assert len(jobs) == 1  # no automatic retry


async def test_invalid_restore_gets_no_job(cluster: Cluster, mariadb: Any) -> None:
    await cluster.kube.create(RESTORES, "test1", restore_body("bad", mariadb))  # no s3, no fromBackup
    invalid = await wait_for(lambda: restore_phase(cluster, "bad", "Invalid"), 20, "Invalid")
    assert "spec.s3" in invalid["status"]["conditions"][-1]["message"]
    assert await cluster.kube.get(JOBS, "test1", "restore-bad") is None


@pytest.mark.parametrize("cluster", [TIBACKUP_GROUP], indirect=True)
async def test_restore_beside_tidb_operator_under_the_overlays_role(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str
) -> None:
    """A Restore of backup.tibackup.io runs under the overlay's Role (get/update on restores, no Secrets,
    no status subresource: the emulator refuses anything else) and its accepted-but-unused upstream
    fields each get an IgnoredField Warning."""
    fill(mariadb, fresh_db, 40)
    await secrets(cluster, mariadb, s3_server)
    backup = backup_body("ours", mariadb, s3_server, bucket, fresh_db)
    backup["apiVersion"] = "backup.tibackup.io/v1alpha1"
    await cluster.kube.create(BACKUPS, "test1", backup)
    await wait_for(lambda: phase_of(cluster, "ours", "Complete"), 90, "the backup")
    before = checksums(mariadb, fresh_db, ["t"])
    mariadb.execute(f"DROP TABLE `{fresh_db}`.t")

    body = restore_body("back", mariadb, tibackup={"fromBackup": "ours"}, storageSize="1Gi", tikvGCLifeTime="72h")
    body["apiVersion"] = "backup.tibackup.io/v1alpha1"
    await cluster.kube.create(RESTORES, "test1", body)
    job = await wait_for(lambda: cluster.api.get(JOBS, "test1", "restore-back"), 20, "the Job")
    assert job["metadata"]["ownerReferences"][0]["apiVersion"] == "backup.tibackup.io/v1alpha1"
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "TIBACKUP_API_GROUP", "value": TIBACKUP_GROUP} in container["env"]
    done = await wait_for(lambda: restore_phase(cluster, "back", "Complete", "Failed", "Invalid"), 90, "restore")
    assert done["status"]["phase"] == "Complete", (done["status"], cluster.kubelet.logs.get("restore-back"))
    assert checksums(mariadb, fresh_db, ["t"]) == before
    events = await cluster.kube.list(EVENTS, "test1")
    ignored = sorted(str(e["message"]).split(" ")[0] for e in events
                     if e["reason"] == "IgnoredField" and e["involvedObject"]["name"] == "back")  # fmt: skip
    assert ignored == ["spec.storageSize", "spec.tikvGCLifeTime"]
