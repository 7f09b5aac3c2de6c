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
import pytest_asyncio

from tests.operator.harness import RESOURCES, ApiServer, AsyncKube, Kubelet, kubeconfig
from tibackup.operator.backups import OperatorConfig
from tibackup.operator.handlers import run_operator
from tibackup.operator.kube import SECRETS, KubeApi
from tibackup.operator.metrics import ScheduleMetrics

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


@pytest_asyncio.fixture()
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """The kopf operator (the real code) against the kmock emulator, with a kubelet stand-in."""
    async with ApiServer() as server, kmock.Server(server):
        for resource, info in RESOURCES.items():
            server.resources[resource] = info
        url = str(server.url).rstrip("/")
        server.objects["v1/namespaces", None, NAMESPACE] = {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}  # fmt: skip
        api = KubeApi.for_host(url, token="test-token")
        config = OperatorConfig(
            image=IMAGE, schedule_interval=1.0, poll_delay=0.5, clean_retry_delay=2.0, gc_retry_interval=1.0
        )
        metrics = ScheduleMetrics()
        stop, ready = asyncio.Event(), asyncio.Event()
        connection = kopf.ConnectionInfo(server=url, scheme="Bearer", token="test-token")
        operator = asyncio.create_task(
            run_operator(api, config, metrics, connection=connection, stop_flag=stop, ready_flag=ready)
        )
        kubelet = Kubelet(api, tmp_path, kubeconfig(tmp_path / "kubeconfig", url), NAMESPACE)
        kubelet_task = asyncio.create_task(kubelet.run())
        try:
            await asyncio.wait_for(ready.wait(), 20)
            yield Cluster(server, api, kubelet, metrics, config)
        finally:
            kubelet_task.cancel()
            for task in list(kubelet.running):
                task.cancel()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(operator, 15)
            if not operator.done():
                operator.cancel()
