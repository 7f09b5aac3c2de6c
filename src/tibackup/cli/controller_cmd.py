"""``tibackup controller`` (runs Backups and schedules until stopped) and the hidden ``run-backup`` /
``run-restore`` that the controller starts for each Backup and Restore."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from tibackup.cli.embedded_opts import namespace_option, open_store, state_dir_option, valid_names
from tibackup.cli.listen import METRICS_PORT
from tibackup.embedded import lifecycle, restores
from tibackup.embedded.store import KIND_BACKUP
from tibackup.errors import NotFoundError, UsageError
from tibackup.resources import Backup, Phase, Restore

log = logging.getLogger("tibackup.controller")


@click.command(
    epilog="""\b
Examples:
  tibackup controller                              # metrics on 127.0.0.1:9840/metrics
  tibackup controller --metrics-address 0.0.0.0    # metrics for a Prometheus on another machine
  tibackup controller --interval 5 --max-concurrent 1 --metrics-port 0
  TIBACKUP_STATE_DIR=/var/lib/tibackup tibackup controller
"""
)
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between passes.")
@click.option(
    "--max-concurrent", type=click.IntRange(1), default=2, show_default=True, help="Backups at once."
)
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=METRICS_PORT, show_default=True,
    help="Prometheus port (/metrics); 0: no metrics.",
)
@click.option(
    "--metrics-address", default="127.0.0.1", show_default=True,
    help="Address the metrics listen on (this machine only unless told otherwise, e.g. 0.0.0.0).",
)
@click.option(
    "--grace-period",
    type=float,
    default=lifecycle.STOP_GRACE_SECONDS,
    show_default=True,
    help="Seconds running backups get to stop when the controller is stopped.",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warn", "error"]), default="info")
@state_dir_option
def controller(
    interval: float,
    max_concurrent: int,
    metrics_port: int,
    metrics_address: str,
    grace_period: float,
    log_level: str,
    state_dir: Path | None,
) -> None:
    """Run pending Backups and Restores and every BackupSchedule (with retention) until SIGTERM or Ctrl-C.

    Each Backup runs in its own child process; a Backup left in Prepare/Running by a process that died
    becomes Failed (reason Interrupted), or Complete when it had already verified its folder, with the
    GC life time restored."""
    from tibackup.cli.main import leave_after_signal, setup_logging
    from tibackup.embedded.controller import Controller, acquire_lock
    from tibackup.embedded.metrics import ScheduleCollector, SkipCounter

    setup_logging(log_level)
    store = open_store(state_dir)
    directory = store.state_dir
    store.close()
    lock = acquire_lock(directory)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():  # a burst is logged, and ends, like one signal
            log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    skipped = SkipCounter()
    if metrics_port:
        from prometheus_client import CollectorRegistry

        from tibackup.cli.listen import serve_metrics

        registry = CollectorRegistry()
        registry.register(ScheduleCollector(directory, skipped))
        try:
            serve_metrics(registry, metrics_port, metrics_address)
        except UsageError:
            lock.close()
            raise
        log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
    try:
        Controller(directory, interval, max_concurrent, grace_period, skipped).run(stop)
    finally:
        lock.close()
    if stop.is_set():
        leave_after_signal(0)


def _run_command(kind: str) -> click.Command:
    """The hidden ``run-backup`` / ``run-restore``: one stored Backup or Restore run to its end in this
    process (the controller starts one per run, ``--adopt``); exit 1 unless it completed."""

    @click.command(hidden=True, help=f"Run one stored {kind} to its end in this process (the controller "
                   f"starts one per {kind}).")  # fmt: skip
    @click.argument("name", callback=valid_names)
    @namespace_option
    @click.option("--adopt", is_flag=True, help="The controller claimed this run for this process.")
    @state_dir_option
    def run(name: str, namespace: str, adopt: bool, state_dir: Path | None) -> None:
        from tibackup.cli.main import setup_logging

        setup_logging("info")
        store = open_store(state_dir)
        found = store.get(kind, namespace, name)
        result: Backup | Restore
        if kind == KIND_BACKUP and isinstance(found, Backup):
            result = lifecycle.run_in_process(store, found, adopt=adopt)
        elif kind == restores.KIND_RESTORE and isinstance(found, Restore):
            result = restores.run_in_process(store, found, adopt=adopt)
        else:
            raise NotFoundError(f'{kind.lower()}s.pingcap.com "{name}" not found in namespace "{namespace}"')
        if result.status.phase != Phase.COMPLETE:
            raise SystemExit(1)

    return run


run_backup_cmd = _run_command(KIND_BACKUP)
run_restore_cmd = _run_command(restores.KIND_RESTORE)
