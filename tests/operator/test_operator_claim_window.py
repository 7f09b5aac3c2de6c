"""The operator on the API emulator: a backup Job killed between claiming its folder and ``Running``
(SIGKILL, as a node or the OOM killer does it) leaves no folder that no Backup knows about.

The Job's manager records the candidate folder (``status.claimPath``) before it writes the claim's gate;
the kill comes while the claim's second listing is held at an S3 gate (tests/integration/faults.py), so
the gate and evidence are on the server and ``Running`` is not recorded. The operator sees the Job fail
and its recover Job takes the claim back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import pytest

from tests.integration.faults import AfterClaimEvidence, RequestGate
from tests.operator.conftest import Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import backup_body, fill, keys, phase_of, secrets
from tibackup.manager import claim
from tibackup.operator.kube import BACKUPS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]


async def test_job_killed_between_claim_and_running_has_its_claim_taken_back(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str
) -> None:
    fill(mariadb, fresh_db, 10)
    await secrets(cluster, mariadb, s3_server)
    with contextlib.closing(RequestGate(s3_server, AfterClaimEvidence())) as gate:
        body = backup_body("killed", mariadb, s3_server, bucket, fresh_db, cleanPolicy="Retain")
        body["spec"]["s3"]["endpoint"] = gate.endpoint
        del body["spec"]["storageSize"]  # direct: no staging volume to emulate
        await cluster.kube.create(BACKUPS, "test1", body)
        await asyncio.to_thread(gate.wait_held, 60)
        names = [key.rsplit("/", 1)[1] for key in keys(s3_server, bucket)]
        assert len(names) == 2 and all(claim.is_claim(n) for n in names), names  # gate and evidence
        pid = await wait_for(lambda: cluster.kubelet.pids.get("backup-killed"), 30, "the Job's process")
        os.kill(pid, signal.SIGKILL)
        gate.drop_held()
        await wait_for(lambda: cluster.kubelet.exit_codes.get("recover-killed") == 0, 60, "the recover Job")
    failed = await wait_for(lambda: phase_of(cluster, "killed", "Failed"), 30, "Failed")
    assert keys(s3_server, bucket) == []  # no folder left that the Backup does not name
    assert not failed["status"].get("claimPath") and not failed["status"].get("backupPath")
