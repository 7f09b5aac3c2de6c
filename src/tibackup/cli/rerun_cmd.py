"""``tibackup rerun bk|rt NAME``: run a Failed (or Invalid) Backup or Restore again, as the annotation
``tibackup.pingcap.com/rerun`` does on Kubernetes (``control.rerun`` has the rules)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tibackup.cli.embedded_opts import kind_of, namespace_option, object_name, open_store, state_dir_option
from tibackup.embedded import lifecycle
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.errors import NotFoundError, UsageError
from tibackup.resources import Backup, Phase, Restore

EXAMPLES = """
\b
Examples:
  tibackup rerun bk demo1-backup-s3 -n test1 --wait   # run it again here and now, show how it ended
  tibackup rerun bk demo1-backup-s3 -n test1          # leave the run to `tibackup controller`
"""


@click.command("rerun", epilog=EXAMPLES)
@click.argument("type_", metavar="TYPE")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.option("--wait", is_flag=True, help="Run the Backups to their end in the foreground.")
@state_dir_option
def rerun(type_: str, names: tuple[str, ...], namespace: str, wait: bool, state_dir: Path | None) -> None:
    """Run Failed or Invalid Backups or Restores again (a Restore resumes from its checkpoint).

    It sets the annotation tibackup.pingcap.com/rerun to a new value, as `kubectl annotate --overwrite`
    does on Kubernetes."""
    from tibackup.cli.resources_cmd import _claim_runs, _wait_for
    from tibackup.control.rerun import RERUNNABLE

    kind = kind_of(type_, allow_secret=False)
    if kind == "Restore":
        _rerun_restores(names, namespace, wait, state_dir)
        return
    if kind != KIND_BACKUP:
        raise UsageError("only Backups and Restores can be re-run: use `tibackup rerun bk|rt NAME`")
    store = open_store(state_dir)
    backups: list[Backup] = []
    for name in names:
        backup = store.get(KIND_BACKUP, namespace, name)
        if not isinstance(backup, Backup):
            raise NotFoundError(f'backups.pingcap.com "{name}" not found in namespace "{namespace}"')
        phase = backup.status.phase
        if phase == Phase.COMPLETE:
            raise UsageError(f"backup {name} is Complete: create a new Backup to take another one")
        if phase not in RERUNNABLE:
            raise UsageError(f"backup {name} has not finished (phase {phase or 'Pending'}): wait for its end")
        backups.append(backup)
    claimed = _claim_runs(store, list(backups)) if wait else []
    try:
        for backup in backups:
            _request_rerun(store, backup)
        if not wait:
            for backup in backups:
                lifecycle.accept_rerun(store, backup)  # reset now: `get` shows it pending at once
            return
        results = [_wait_for(store, backup, backup in claimed) for backup in backups]
    finally:
        for backup in claimed:
            store.clear_run(lifecycle.namespace_of(backup), backup.metadata.name, os.getpid())
    from tibackup.cli.table_view import report_runs

    report_runs(results, lifecycle.now())


def _rerun_restores(names: tuple[str, ...], namespace: str, wait: bool, state_dir: Path | None) -> None:
    """``rerun rt``: the same annotation on Failed/Invalid Restores; a rerun resumes from load's checkpoint."""
    from tibackup.cli.resources_cmd import _claim_runs, _wait_for_restore
    from tibackup.cli.table_view import report_runs
    from tibackup.control.rerun import RERUNNABLE
    from tibackup.embedded import restores

    store = open_store(state_dir)
    found = []
    for name in names:
        restore = restores.current(store, namespace, name)
        if restore is None:
            raise NotFoundError(f'restores.pingcap.com "{name}" not found in namespace "{namespace}"')
        if restore.status.phase not in RERUNNABLE:
            raise UsageError(
                f"restore {name} is {restore.status.phase or 'Pending'}: only Failed or Invalid Restores run again"
            )
        found.append(restore)
    claimed = _claim_runs(store, list(found)) if wait else []
    try:
        for restore in found:
            _request_rerun(store, restore)
            if not wait:
                restores.accept_rerun(store, restore)
        if not wait:
            return
        results = [_wait_for_restore(store, restore, restore in claimed) for restore in found]
    finally:
        for claim in claimed:
            if isinstance(claim, Restore):
                store.clear_run(*restores.run_key(claim), os.getpid())
    report_runs(results, lifecycle.now())


def _request_rerun(store: Store, obj: Backup | Restore) -> None:
    """Set a new ``tibackup.pingcap.com/rerun`` token on ``obj`` and store it (both kinds alike)."""
    from tibackup.control.rerun import RERUN_ANNOTATION, rerun_token

    annotations = {**(obj.metadata.annotations or {}), RERUN_ANNOTATION: rerun_token(lifecycle.now())}
    obj.metadata = obj.metadata.model_copy(update={"annotations": annotations})
    store.apply(obj)
    click.echo(f"{object_name(obj)} rerun requested")
