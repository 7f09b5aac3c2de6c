"""`tibackup operator` itself: it refuses CRDs that are not tibackup's, its health endpoint answers, a busy
port is one line. The API is the kmock emulator (no real cluster)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import kmock
import pytest

from tests.operator.conftest import Cluster
from tests.operator.harness import ADMIN_TOKEN, ApiServer, kubeconfig, resources
from tibackup.operator.crdcheck import crd_problem
from tibackup.resources.apigroups import PINGCAP_GROUP, TIBACKUP_GROUP
from tibackup.resources.backup import Backup
from tibackup.resources.backup_schedule import BackupSchedule
from tibackup.resources.crd import crd

ROOT = Path(__file__).resolve().parents[2]
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


def tidb_operator_crd(plural: str) -> dict[str, Any]:
    """What TiDB Operator installs (manifests/crd/v1/pingcap.com_backups.yaml): controller-gen's, no label of ours."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.pingcap.com",
                         "annotations": {"controller-gen.kubebuilder.io/version": "v0.6.2"}},
            "spec": {"group": "pingcap.com", "names": {"plural": plural, "kind": "Backup"}, "scope": "Namespaced",
                     "versions": [{"name": "v1alpha1", "served": True, "storage": True, "subresources": {}}]}}  # fmt: skip


def test_crd_problem_decides_by_the_owner_label() -> None:
    assert crd_problem("backups.pingcap.com", PINGCAP_GROUP, crd(Backup)) is None
    assert crd_problem("backups.backup.tibackup.io", TIBACKUP_GROUP, crd(Backup, TIBACKUP_GROUP)) is None
    foreign = crd_problem("backups.pingcap.com", PINGCAP_GROUP, tidb_operator_crd("backups"))
    assert foreign is not None and "TiDB Operator" in foreign and "--api-group backup.tibackup.io" in foreign
    assert "deploy/overlays/beside-tidb-operator" in foreign
    missing = crd_problem("backupschedules.backup.tibackup.io", TIBACKUP_GROUP, None)
    assert (
        missing is not None and "not installed" in missing and "kubectl apply -k deploy/overlays/" in missing
    )


def run_operator_cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = kubeconfig(tmp_path / "kubeconfig", url, token=ADMIN_TOKEN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "TIBACKUP_API"))}
    return subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", "operator", "--kubeconfig", str(config), "--metrics-port", "0",
         *args], capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("installed", ["tidb-operator", "none", "half"])
async def test_operator_refuses_crds_it_does_not_own(tmp_path: Path, installed: str) -> None:
    async with ApiServer() as server, kmock.Server(server):
        for resource, info in resources().items():
            server.resources[resource] = info
        if installed == "tidb-operator":
            for plural in ("backups", "backupschedules"):
                server.objects[CRDS, None, f"{plural}.pingcap.com"] = tidb_operator_crd(plural)
        if installed == "half":  # tibackup's Backup CRD, but TiDB Operator's BackupSchedule one
            server.objects[CRDS, None, "backups.pingcap.com"] = crd(Backup)
            server.objects[CRDS, None, "backupschedules.pingcap.com"] = tidb_operator_crd("backupschedules")
        url = str(server.url).rstrip("/")
        result = await asyncio.to_thread(run_operator_cli, tmp_path, url)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: CRD ")
    if installed == "none":
        assert "backups.pingcap.com is not installed" in line and "kubectl apply -k deploy/" in line
    else:
        assert "not take it over" in line and "--api-group backup.tibackup.io" in line
        assert ("backupschedules" in line) == (installed == "half")


@pytest.mark.asyncio
async def test_operator_beside_tidb_operator_needs_its_own_crds(tmp_path: Path) -> None:
    """With --api-group backup.tibackup.io, TiDB Operator's pingcap.com CRDs are fine; ours must exist."""
    async with ApiServer() as server, kmock.Server(server):
        for resource, info in resources(TIBACKUP_GROUP).items():
            server.resources[resource] = info
        for plural in ("backups", "backupschedules"):
            server.objects[CRDS, None, f"{plural}.pingcap.com"] = tidb_operator_crd(plural)
        server.objects[CRDS, None, "backups.backup.tibackup.io"] = crd(Backup, TIBACKUP_GROUP)
        url = str(server.url).rstrip("/")
        result = await asyncio.to_thread(run_operator_cli, tmp_path, url, "--api-group", TIBACKUP_GROUP)
    assert result.returncode == 2
    assert "CRD backupschedules.backup.tibackup.io is not installed" in result.stderr
    assert crd(BackupSchedule, TIBACKUP_GROUP)["metadata"]["name"] == "backupschedules.backup.tibackup.io"


def test_busy_health_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", token=ADMIN_TOKEN)
        # The CRD check comes later: the port is checked before anything talks to the API.
        result = subprocess.run(
            [sys.executable, "-m", "tibackup.cli.main", "operator", "--kubeconfig", str(config),
             "--metrics-port", "0", "--health-port", str(port)], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f":{port} (the port is in use)" in line and "--health-port" in line


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_health_endpoint_answers(cluster: Cluster) -> None:
    def get() -> int:
        with urllib.request.urlopen(cluster.health_url, timeout=10) as response:
            return int(response.status)

    assert await asyncio.to_thread(get) == 200
