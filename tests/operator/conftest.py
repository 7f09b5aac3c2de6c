"""Fixtures of the operator tests: the API emulator, the real kopf operator on it, a kubelet stand-in."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import kmock
import kopf
import pytest
import pytest_asyncio
from testenv._proc import free_port

from tests.operator.harness import (
    ADMIN_TOKEN,
    OPERATOR_TOKEN,
    ROOT,
    UPSTREAM_BACKUP_RBAC,
    ApiServer,
    AsyncKube,
    Kubelet,
    kubeconfig,
    resources,
    role_rules,
)
from tibackup.operator.backups import OperatorConfig
from tibackup.operator.handlers import run_operator
from tibackup.operator.kube import SECRETS, KubeApi, set_api_group
from tibackup.operator.metrics import ScheduleMetrics
from tibackup.resources.apigroups import PINGCAP_GROUP, api_version

NAMESPACE = "test1"
IMAGE = "registry.example.com/tibackup:test"


@dataclass
class Cluster:
    server: ApiServer
    api: KubeApi
    kubelet: Kubelet
    metrics: ScheduleMetrics
    config: OperatorConfig
    namespace: str = NAMESPACE
    group: str = PINGCAP_GROUP
    health_url: str = ""

    @property
    def api_version(self) -> str:
        return api_version(self.group)

    @property
    def kube(self) -> AsyncKube:
        """The same API, awaitable: a sync call from the test would block the emulator's event loop."""
        return AsyncKube(self.api)

    async def secret(self, name: str, **data: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        await self.kube.create(SECRETS, self.namespace, body)


OVERLAY = ROOT / "deploy" / "overlays" / "beside-tidb-operator"


@pytest_asyncio.fixture()
async def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """The kopf operator (the real code) against the kmock emulator, with a kubelet stand-in.

    The operator works under the ClusterRole of deploy/operator/rbac.yaml; its Jobs under TiDB Operator's
    backup-rbac.yaml Role (pingcap.com) or the overlay's (tibackup's own group: parametrize
    ``cluster`` indirectly with the group)."""
    group = getattr(request, "param", PINGCAP_GROUP)
    set_api_group(group)
    async with ApiServer() as server, kmock.Server(server):
        for resource, info in resources(group).items():
            server.resources[resource] = info
        server.operator_rules = role_rules(ROOT / "deploy" / "operator" / "rbac.yaml", "ClusterRole", group)
        server.job_rules = (
            role_rules(UPSTREAM_BACKUP_RBAC)
            if group == PINGCAP_GROUP
            else role_rules(OVERLAY / "backup-rbac.yaml")
        )
        url = str(server.url).rstrip("/")
        server.objects["v1/namespaces", None, NAMESPACE] = {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}  # fmt: skip
        api = KubeApi.for_host(url, token=ADMIN_TOKEN)
        operator_api = KubeApi.for_host(url, token=OPERATOR_TOKEN)
        config = OperatorConfig(
            image=IMAGE, schedule_interval=1.0, poll_delay=0.5, clean_retry_delay=2.0, gc_retry_interval=1.0
        )
        metrics = ScheduleMetrics()
        stop, ready = asyncio.Event(), asyncio.Event()
        connection = kopf.ConnectionInfo(server=url, scheme="Bearer", token=OPERATOR_TOKEN)
        health_url = f"http://127.0.0.1:{free_port()}/healthz"
        running = run_operator(
            operator_api, config, metrics, connection=connection, stop_flag=stop, ready_flag=ready,
            liveness_endpoint=health_url,
        )  # fmt: skip
        operator = asyncio.create_task(running)
        kubelet = Kubelet(api, tmp_path, kubeconfig(tmp_path / "kubeconfig", url), NAMESPACE)
        kubelet_task = asyncio.create_task(kubelet.run())
        try:
            await asyncio.wait_for(ready.wait(), 20)
            yield Cluster(server, api, kubelet, metrics, config, group=group, health_url=health_url)
            # Every request of the operator and of its Jobs was allowed by the shipped/upstream RBAC.
            assert server.forbidden == []
        finally:
            set_api_group(PINGCAP_GROUP)
            kubelet_task.cancel()
            for task in list(kubelet.running):
                task.cancel()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(operator, 15)
            if not operator.done():
                operator.cancel()
