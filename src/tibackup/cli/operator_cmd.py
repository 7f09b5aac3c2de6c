"""``tibackup operator`` (the Kubernetes operator) and ``tibackup job …`` (what its Jobs run)."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from tibackup.cli.listen import METRICS_PORT
from tibackup.errors import UsageError
from tibackup.resources.apigroups import GROUPS, PINGCAP_GROUP, TIBACKUP_GROUP


def _require_operator_extra() -> None:
    """One line instead of a traceback where the operator's dependencies were not installed."""
    try:
        import kopf  # noqa: F401
        import kubernetes  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the Kubernetes operator and its Jobs need kopf and the Kubernetes client ({exc.name} is not "
            "installed): pip install 'tibackup[operator]'"
        ) from None


@click.command("operator")
@click.option(
    "--namespace", "-n", "namespaces", multiple=True, help="Watch only this namespace (repeatable)."
)
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (the default).")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=METRICS_PORT,
    show_default=True,
    help="Prometheus port (/metrics); 0: none.",
)
@click.option(
    "--metrics-address", default="0.0.0.0", show_default=True, help="Address the metrics listen on."
)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of kopf's health endpoint /healthz for liveness/readiness probes; 0: none.",
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig outside a cluster.")
@click.option("--image", envvar="TIBACKUP_IMAGE", help="Image of the Jobs (default: $TIBACKUP_IMAGE).")
@click.option("--schedule-interval", type=float, default=15.0, show_default=True,
              help="Seconds between two looks at each BackupSchedule.")  # fmt: skip
@click.option(
    "--api-group", envvar="TIBACKUP_API_GROUP", type=click.Choice(GROUPS), default=PINGCAP_GROUP,
    show_default=True,
    help=f"The group of the Backups to serve: {TIBACKUP_GROUP} beside TiDB Operator (which owns {PINGCAP_GROUP}).",
)  # fmt: skip
@click.option("--log-level", type=click.Choice(["debug", "info", "warn", "error"]), default="info")
def operator_command(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    metrics_port: int,
    metrics_address: str,
    health_port: int,
    kubeconfig: str | None,
    image: str | None,
    schedule_interval: float,
    api_group: str,
    log_level: str,
) -> None:
    """Run the Kubernetes operator: Backups become Jobs, BackupSchedules create and prune Backups."""
    _require_operator_extra()
    from tibackup.cli.listen import check_free, serve_metrics
    from tibackup.cli.main import setup_logging
    from tibackup.operator.backups import OperatorConfig
    from tibackup.operator.crdcheck import check_crds
    from tibackup.operator.handlers import run_operator
    from tibackup.operator.jobs import DEFAULT_IMAGE
    from tibackup.operator.kube import CRDS, KubeApi, load_configuration, set_api_group
    from tibackup.operator.metrics import ScheduleMetrics

    if namespaces and all_namespaces:
        raise UsageError("--namespace and --all-namespaces exclude each other; give one")
    if schedule_interval <= 0:
        raise UsageError("--schedule-interval must be positive")
    setup_logging(log_level)
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's own login reads it too
    if health_port:
        check_free("0.0.0.0", health_port, "--health-port")
    set_api_group(api_group)
    api = KubeApi(load_configuration(kubeconfig))
    check_crds(lambda name: api.get(CRDS, None, name), api_group)
    config = OperatorConfig(image=image or DEFAULT_IMAGE, schedule_interval=schedule_interval)
    metrics = ScheduleMetrics()
    liveness = f"http://0.0.0.0:{health_port}/healthz" if health_port else None
    if metrics_port:
        serve_metrics(metrics.registry, metrics_port, metrics_address)
    asyncio.run(run_operator(api, config, metrics, namespaces=namespaces, liveness_endpoint=liveness))


@click.group("job")
def job_group() -> None:
    """Commands the operator's Jobs run inside the cluster (not meant to be typed by hand)."""


def _job_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig outside a cluster.")(
        fn
    )
    fn = click.option("--name", required=True, help="The Backup's name.")(fn)
    return click.option("--namespace", required=True, help="The Backup's namespace.")(fn)


def _run(action: str, namespace: str, name: str, kubeconfig: str | None) -> None:
    _require_operator_extra()
    from tibackup.cli.main import setup_logging
    from tibackup.operator import jobcmds
    from tibackup.operator.kube import KubeApi, load_configuration

    setup_logging(os.environ.get("TIBACKUP_LOG_LEVEL", "info"))
    api = KubeApi(load_configuration(kubeconfig))
    commands = {
        "backup": jobcmds.run_backup_job,
        "clean": jobcmds.clean_backup_job,
        "recover": jobcmds.recover_backup_job,
        "restore": jobcmds.run_restore_job,
    }
    sys.exit(commands[action](api, namespace, name))


@job_group.command("run-backup")
@_job_options
def run_backup_command(namespace: str, name: str, kubeconfig: str | None) -> None:
    """Run one Backup and write its status (the backup Job's command)."""
    _run("backup", namespace, name, kubeconfig)


@job_group.command("clean-backup")
@_job_options
def clean_backup_command(namespace: str, name: str, kubeconfig: str | None) -> None:
    """Delete one Backup's remote data (the clean Job's command, on deletion with cleanPolicy)."""
    _run("clean", namespace, name, kubeconfig)


@job_group.command("recover-backup")
@_job_options
def recover_backup_command(namespace: str, name: str, kubeconfig: str | None) -> None:
    """Restore the GC life time a killed backup had raised."""
    _run("recover", namespace, name, kubeconfig)


@job_group.command("run-restore")
@_job_options
def run_restore_command(namespace: str, name: str, kubeconfig: str | None) -> None:
    """Run one Restore and write its status (the restore Job's command)."""
    _run("restore", namespace, name, kubeconfig)
