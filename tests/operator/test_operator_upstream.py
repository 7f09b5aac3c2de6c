"""TiDB Operator v1.6 YAML on the operator (kopf on the API emulator): an upstream Backup runs to
Complete where s3.path says, with one Warning event per ignored field; an upstream schedule warns too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.operator.conftest import Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import DB_SECRET, S3_SECRET, fill, phase_of, secrets
from tests.upstream_examples import (
    APPLIED_BY_OPERATOR,
    IGNORED_IN_BACKUP,
    IGNORED_IN_SCHEDULE,
    upstream_backup,
    upstream_backup_spec,
    upstream_schedule,
)
from tibackup.operator.kube import BACKUPS, EVENTS, JOBS, PVCS, SCHEDULES

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]


def _warned(cluster: Cluster, name: str) -> list[str]:
    events = cluster.api.list(EVENTS, "test1")
    return [
        str(e.get("message"))
        for e in events
        if e.get("reason") == "IgnoredField" and (e.get("involvedObject") or {}).get("name") == name
    ]


async def test_upstream_backup_completes_and_warns(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str
) -> None:
    fill(mariadb, fresh_db, 50)
    await secrets(cluster, mariadb, s3_server)
    spec = upstream_backup_spec(
        mariadb.host, mariadb.port, DB_SECRET, s3_server.endpoint, bucket, S3_SECRET, fresh_db
    )
    await cluster.kube.create(BACKUPS, "test1", upstream_backup("v16", "test1", spec))
    job = await wait_for(lambda: cluster.api.get(JOBS, "test1", "backup-v16"), 20, "the Job")
    pod = job["spec"]["template"]["spec"]
    assert {"name": "extra", "emptyDir": {}} in pod["volumes"]  # upstream's additionalVolumes, applied
    assert {"name": "extra", "mountPath": "/extra"} in pod["containers"][0]["volumeMounts"]
    pvc = await cluster.kube.get(PVCS, "test1", "backup-v16")
    assert pvc is not None and pvc["spec"]["volumeAttributesClassName"] == "fast"
    done = await wait_for(lambda: phase_of(cluster, "v16", "Complete", "Failed", "Invalid"), 90, "the end")
    status = done["status"]
    assert status["phase"] == "Complete", (status, cluster.kubelet.logs.get("backup-v16"))
    assert status["backupPath"].startswith(f"s3://{bucket}/upstream/v16/backup-")
    warned = await wait_for(lambda: _warned(cluster, "v16") or None, 10, "the warnings")
    expected = sorted(f"spec.{f}" for f in IGNORED_IN_BACKUP if f not in APPLIED_BY_OPERATOR)
    assert sorted(m.split()[0] for m in warned) == expected


async def test_upstream_schedule_warns_about_log_backups(cluster: Cluster) -> None:
    spec = upstream_backup_spec("127.0.0.1", 1, DB_SECRET, "http://127.0.0.1:1", "bkt", S3_SECRET, "db")
    await cluster.kube.create(SCHEDULES, "test1", upstream_schedule("nightly", "test1", spec))

    def all_warned() -> list[str] | None:
        fields = {m.split()[0] for m in _warned(cluster, "nightly")}
        return sorted(fields) if {f"spec.{f}" for f in IGNORED_IN_SCHEDULE} <= fields else None

    fields = await wait_for(all_warned, 30, "a warning per ignored schedule field")
    assert "spec.backupTemplate.calcSizeLevel" in fields
