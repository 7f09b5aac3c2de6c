"""The kopf wiring: which events call which controller method. Handlers stay one or two lines.

kopf owns watching, retries and the finalizer; its bookkeeping goes into annotations under
``operator.tibackup.pingcap.com`` (not into ``status``, which the CRD schema does not let it write).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import kopf

from tibackup.operator.backups import BackupController, OperatorConfig
from tibackup.operator.jobs import ANNOTATION_GC_RECORD
from tibackup.operator.kube import VERSION, KubeApi, api_group
from tibackup.operator.metrics import ScheduleMetrics
from tibackup.operator.restores import RestoreController
from tibackup.operator.schedules import ScheduleController

log = logging.getLogger(__name__)
FINALIZER = "tibackup.pingcap.com/finalizer"
STORAGE_PREFIX = "operator.tibackup.pingcap.com"
MANAGED_JOBS = {"app.kubernetes.io/managed-by": "tibackup-operator"}


def _plain(body: Any) -> dict[str, Any]:
    """kopf's read-only body as a plain, independent dict."""
    data = json.loads(json.dumps(dict(body), default=lambda o: dict(o) if hasattr(o, "keys") else list(o)))
    assert isinstance(data, dict)
    return data


def build_registry(
    api: KubeApi,
    config: OperatorConfig,
    metrics: ScheduleMetrics,
    connection: kopf.ConnectionInfo | None = None,
) -> kopf.OperatorRegistry:
    """A fresh registry with the operator's handlers (one per operator instance, so tests can run several)."""
    registry = kopf.OperatorRegistry()
    group = api_group()  # pingcap.com, or tibackup's own group beside TiDB Operator (--api-group)
    backups = BackupController(api, config)
    schedules = ScheduleController(api, metrics)
    restores = RestoreController(api, config)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a Pod: the service account; outside: the kubeconfig ($KUBECONFIG, set by --kubeconfig).
        return connection if connection is not None else kopf.login_via_client(**kwargs)

    @kopf.on.create(group, VERSION, "backups", registry=registry, id="start")
    @kopf.on.resume(group, VERSION, "backups", registry=registry, id="resume")
    @kopf.on.update(group, VERSION, "backups", registry=registry, id="update")  # e.g. a re-run annotation
    def start_backup(body: kopf.Body, **_: Any) -> None:
        if not backups.ensure_job(_plain(body)):
            raise kopf.TemporaryError("the previous run's Job is still being deleted", delay=config.poll_delay)

    @kopf.on.delete(group, VERSION, "backups", registry=registry, id="clean")
    def clean_backup(body: kopf.Body, **_: Any) -> None:
        progress = backups.cleanup(_plain(body))
        if not progress.done:
            raise kopf.TemporaryError("waiting for the clean Job", delay=progress.delay)

    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED_JOBS, registry=registry)
    def job_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        if type != "DELETED":
            backups.job_changed(_plain(body))
            restores.job_changed(_plain(body))

    @kopf.on.create(group, VERSION, "restores", registry=registry, id="start-restore")
    @kopf.on.resume(group, VERSION, "restores", registry=registry, id="resume-restore")
    @kopf.on.update(group, VERSION, "restores", registry=registry, id="update-restore")
    def start_restore(body: kopf.Body, **_: Any) -> None:
        if not restores.ensure_job(_plain(body)):
            raise kopf.TemporaryError("the previous run's Job is still being deleted", delay=config.poll_delay)

    @kopf.on.delete(group, VERSION, "restores", registry=registry, id="delete-restore")
    def delete_restore(body: kopf.Body, **_: Any) -> None:
        restores.cleanup(_plain(body))

    @kopf.timer(group, VERSION, "backups", interval=config.gc_retry_interval, registry=registry,
                annotations={ANNOTATION_GC_RECORD: kopf.PRESENT}, id="gc-restore")  # fmt: skip
    def gc_restore_retry(body: kopf.Body, **_: Any) -> None:
        backups.retry_gc_restore(_plain(body))

    @kopf.timer(group, VERSION, "backupschedules", interval=config.schedule_interval, registry=registry)
    def schedule_tick(body: kopf.Body, **_: Any) -> None:
        schedules.tick(_plain(body), datetime.now(UTC))

    # A raw event: unlike on.delete, kopf then keeps no state on schedules (no finalizer, no diffbase).
    @kopf.on.event(group, VERSION, "backupschedules", registry=registry)
    def schedule_event(type: str | None, namespace: str | None, name: str | None, **_: Any) -> None:
        if type == "DELETED":
            metrics.forget(namespace or "default", name or "")

    return registry


def build_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # tibackup posts its own events for every step
    settings.watching.reconnect_backoff = 1.0
    return settings


async def run_operator(
    api: KubeApi,
    config: OperatorConfig,
    metrics: ScheduleMetrics,
    *,
    namespaces: Collection[str] = (),
    connection: kopf.ConnectionInfo | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    liveness_endpoint: str | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or forever): all namespaces unless ``namespaces`` are given."""
    await kopf.operator(
        registry=build_registry(api, config, metrics, connection),
        settings=build_settings(),
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        standalone=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        liveness_endpoint=liveness_endpoint,  # kopf's /healthz for the Deployment's probes
    )
