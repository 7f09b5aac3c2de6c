"""Hostile input on the operator (kopf on the API emulator): a spec that can never run is Invalid at once
with no Job, a schedule whose template can never run creates no Backups, an empty password backs up."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.operator.conftest import Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import S3_SECRET, backup_body, fill, keys, phase_of
from tibackup.operator.kube import BACKUPS, EVENTS, JOBS, SCHEDULES

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]


def _bad_backup(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
        "metadata": {"name": name, "namespace": "test1"},
        "spec": {"from": {"host": "127.0.0.1", "port": 1, "secretName": "db"},
                 "s3": {"provider": "ceph", "bucket": "bkt", "endpoint": "http://127.0.0.1:1"},
                 "dumpling": {"options": ["--no-such-flag"]}},
    }  # fmt: skip


async def test_a_backup_that_can_never_run_is_invalid_without_a_job(cluster: Cluster) -> None:
    await cluster.kube.create(BACKUPS, "test1", _bad_backup("bad-flag"))
    invalid = await wait_for(lambda: phase_of(cluster, "bad-flag", "Invalid"), 20, "Invalid")
    message = invalid["status"]["conditions"][-1]["message"]
    assert message.startswith("spec.dumpling.options: ") and "no-such-flag" in message
    assert await cluster.kube.get(JOBS, "test1", "backup-bad-flag") is None  # never started


async def test_a_schedule_whose_template_can_never_run_creates_no_backups(cluster: Cluster) -> None:
    template = _bad_backup("x")["spec"]
    schedule = {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "BackupSchedule",
        "metadata": {"name": "never", "namespace": "test1"},
        "spec": {"schedule": "@every 1s", "backupTemplate": template},
    }  # fmt: skip
    await cluster.kube.create(SCHEDULES, "test1", schedule)

    def warned() -> bool:
        events = cluster.api.list(EVENTS, "test1")
        return any("spec.backupTemplate.dumpling.options" in (e.get("message") or "") for e in events)

    await wait_for(warned, 30, "a warning event naming the template's field")
    await asyncio.sleep(2)  # several ticks of @every 1s have passed: none may have created a Backup
    assert await asyncio.to_thread(cluster.api.list, BACKUPS, "test1") == []


async def test_an_empty_password_backs_up_through_the_jobs_environment(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str
) -> None:
    fill(mariadb, fresh_db, 20)
    user = f"nopw_{uuid.uuid4().hex[:8]}"
    mariadb.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY ''")
    try:
        mariadb.execute(
            f"GRANT SELECT, RELOAD, LOCK TABLES, BINLOG MONITOR, SHOW VIEW ON *.* TO '{user}'@'%'"
        )
        await cluster.secret("empty-pw", password="")
        await cluster.secret(S3_SECRET, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
        body = backup_body("nopw", mariadb, s3_server, bucket, fresh_db)
        body["spec"]["from"].update(user=user, secretName="empty-pw")
        await cluster.kube.create(BACKUPS, "test1", body)
        done = await wait_for(
            lambda: phase_of(cluster, "nopw", "Complete", "Failed", "Invalid"), 90, "the end"
        )
        assert done["status"]["phase"] == "Complete", (
            done["status"],
            cluster.kubelet.logs.get("backup-nopw"),
        )
        assert any(k.endswith("/metadata") for k in keys(s3_server, bucket))
    finally:
        mariadb.execute(f"DROP USER '{user}'@'%'")
