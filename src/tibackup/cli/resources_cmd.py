"""The embedded runtime's verbs, as kubectl spells them: ``apply``, ``get``, ``describe``, ``delete``,
``create secret generic``, and the long-running ``controller``.

State lives in SQLite under ``--state-dir``; nothing here talks to Kubernetes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tibackup.cli.embedded_opts import (
    RESOURCE_NAME,
    namespace_option,
    object_name,
    open_store,
    state_dir_option,
    type_name,
    valid_namespace,
)
from tibackup.cli.get_cmd import KubectlNotFound, selected
from tibackup.embedded import lifecycle, restores
from tibackup.embedded.procs import start_ticks
from tibackup.embedded.store import KIND_BACKUP, Store, UnreadableError
from tibackup.errors import Interrupted, InvalidSpecError, NotFoundError, UsageError
from tibackup.resources import (
    FINISHED_PHASES,
    Backup,
    BackupSchedule,
    Phase,
    Resource,
    Restore,
    load_resources,
)
from tibackup.resources.upstream import ignored_fields

OUTPUTS = ("wide", "json", "yaml", "name")


_EXTENSIONS = (".json", ".yaml", ".yml")  # the files kubectl apply -f DIR reads


def _expand(files: tuple[str, ...], recursive: bool) -> list[str]:
    """``-f DIR``: its .json/.yaml/.yml files by name (with -R, those of its subfolders too)."""
    expanded: list[str] = []
    for name in files:
        folder = Path(name)
        if name == "-" or not folder.is_dir():
            expanded.append(name)
            continue
        found = folder.rglob("*") if recursive else folder.glob("*")
        chosen = sorted(str(p) for p in found if p.is_file() and p.suffix in _EXTENSIONS)
        if not chosen:
            raise UsageError(
                f"error reading {name}: recognized file extensions are {' '.join(_EXTENSIONS)}"
                + ("" if recursive else " (add -R to read its subfolders)")
            )
        expanded += chosen
    return expanded


def _read_files(files: tuple[str, ...], recursive: bool = False) -> list[tuple[str, str]]:
    texts = []
    for name in _expand(files, recursive):
        if name == "-":
            texts.append(("<stdin>", sys.stdin.read()))
            continue
        try:
            texts.append((name, Path(name).read_text()))
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}; check the path given to -f") from None
    return texts


def _validated(files: tuple[str, ...], namespace: str | None, recursive: bool = False) -> list[Resource]:
    from tibackup.manager.admission import admit

    resources: list[Resource] = []
    for name, text in _read_files(files, recursive):
        try:
            loaded = load_resources(text)
        except InvalidSpecError as exc:
            raise InvalidSpecError(exc.field, f"{exc.message.split(': ', 1)[-1]} (in {name})") from None
        for resource in loaded:
            meta = resource.metadata
            if namespace and meta.namespace and meta.namespace != namespace:
                raise UsageError(
                    f'the namespace from the provided object "{meta.namespace}" does not match the namespace '
                    f'"{namespace}"; pass --namespace={meta.namespace} or remove metadata.namespace'
                )
            meta.namespace = meta.namespace or namespace or "default"
            try:
                admit(resource)  # the run's own checks: a spec that can never run is refused now
            except InvalidSpecError as exc:
                raise InvalidSpecError(
                    exc.field, f"{exc.message.split(': ', 1)[-1]} ({resource.kind} {meta.name} in {name})"
                ) from None
            resources.append(resource)
    if not resources:
        raise UsageError("no objects passed to apply; the file holds no Backup, BackupSchedule or Restore")
    return resources


@click.command(
    epilog="""\b
Examples:
  tibackup apply -f examples/backup-s3-ceph.yaml -n test1
  tibackup apply -f backup-s3.yaml --wait      # run the Backup here, now, and show how it ended
  tibackup apply -f restore-s3.yaml --wait     # the same for a Restore (docs/restore.md)
  tibackup apply -f backups/                   # every .yaml/.yml/.json file of the folder
  cat schedule.yaml | tibackup apply -f -
"""
)
@click.option(
    "-f", "--filename", "files", multiple=True, required=True, help="YAML file, folder, or '-' for stdin."
)
@click.option("-R", "--recursive", is_flag=True, help="With -f DIR, read its subfolders too.")
@click.option(
    "-n", "--namespace", default=None, callback=valid_namespace, help="Namespace for objects that name none."
)
@click.option("--wait", is_flag=True, help="Run the applied Backups and Restores to their end in the foreground.")
@state_dir_option
def apply(
    files: tuple[str, ...], recursive: bool, namespace: str | None, wait: bool, state_dir: Path | None
) -> None:
    """Create or update Backups, BackupSchedules and Restores from YAML (several documents per file allowed).

    A Backup or Restore applied without --wait is run by `tibackup controller`."""
    resources = _validated(files, namespace, recursive)  # all or nothing: a bad document stores none
    store = open_store(state_dir)
    claimed = _claim_runs(store, resources) if wait else []
    try:
        for resource in resources:
            stored, action = store.apply(resource)
            for warning in ignored_fields(resource):  # as kubectl prints an API server's warnings
                click.echo(f"Warning: {warning}", err=True)
                store.add_event(stored, "Warning", "IgnoredField", warning)
            click.echo(f"{object_name(resource)} {action}")
        if not wait:
            _hint_controller(store, resources)
            return
        results = [
            _wait_for(store, resource, resource in claimed)
            for resource in resources
            if isinstance(resource, Backup)
        ]
        restored = [_wait_for_restore(store, r, r in claimed) for r in resources if isinstance(r, Restore)]
    finally:
        for resource in claimed:
            key = restores.run_key(resource) if isinstance(resource, Restore) else None
            ns, run = key or (lifecycle.namespace_of(resource), resource.metadata.name)
            store.clear_run(ns, run, os.getpid())
    from tibackup.cli.table_view import report_runs

    if results:
        report_runs(results, lifecycle.now())
    if restored:
        report_runs(restored, lifecycle.now())


def _claim_runs(store: Store, resources: list[Resource]) -> list[Resource]:
    """Claim the runs before the Backups are stored, so a running controller does not start them too."""
    pid = os.getpid()
    claimed: list[Resource] = []
    for resource in resources:
        if isinstance(resource, Backup):
            ns, name = lifecycle.namespace_of(resource), resource.metadata.name
            existing = store.claim_run(ns, name, "", pid, start_ticks(pid))
            if existing is None:
                claimed.append(resource)
        elif isinstance(resource, Restore) and restores.claim(store, resource, pid) is None:
            claimed.append(resource)
    return claimed


@dataclass(frozen=True)
class _Runs:
    """How the embedded runtime runs one kind (``embedded.lifecycle`` for Backups, ``embedded.restores``
    for Restores): what ``apply --wait`` and ``rerun --wait`` need of it."""

    current: Callable[[Store, str, str], Any]  # the stored object, None when gone
    accept_rerun: Callable[[Store, Any], Any]
    run_in_process: Callable[..., Any]
    live_run: Callable[[Store, Any], Any]
    in_progress: tuple[Phase, ...]  # a run in these phases without a live process died
    recover: Callable[[Store, Any], Any]


def _stored_backup(store: Store, namespace: str, name: str) -> Backup | None:
    found = store.get(KIND_BACKUP, namespace, name)
    return found if isinstance(found, Backup) else None


_BACKUP_RUNS = _Runs(_stored_backup, lifecycle.accept_rerun, lifecycle.run_in_process, lifecycle.live_run,
                     (Phase.PREPARE, Phase.RUNNING, Phase.SCHEDULED), lifecycle.recover)  # fmt: skip
_RESTORE_RUNS = _Runs(restores.current, restores.accept_rerun, restores.run_in_process, restores.live_run,
                      restores.IN_PROGRESS, restores.recover)  # fmt: skip


def _wait_for_run(store: Store, applied: Backup | Restore, claimed: bool, runs: _Runs) -> Any:
    """``--wait``: run the object here (or wait for the process that runs it) to its end; a new
    ``tibackup.pingcap.com/rerun`` annotation first resets it to run again."""
    import time

    from tibackup.cli.main import setup_logging

    setup_logging("info")
    ns, name = lifecycle.namespace_of(applied), applied.metadata.name
    runs.accept_rerun(store, applied)
    while True:
        current = runs.current(store, ns, name)
        if current is None:
            kind = applied.kind.lower()
            raise NotFoundError(f'{kind} "{name}" disappeared from namespace "{ns}" while waiting for it')
        if current.status.phase in FINISHED_PHASES:
            return current
        if claimed:
            return _run_here(store, current, runs, adopt=True)
        record = runs.live_run(store, current)
        if record is None and current.status.phase in runs.in_progress:
            recovered = runs.recover(store, current)  # its process died: Failed (Interrupted)
            if recovered is not None:
                return recovered
        if record is None and not current.status.phase:
            return _run_here(store, current, runs)
        time.sleep(0.5)  # another process runs it: wait for its end


def _run_here(store: Store, resource: Backup | Restore, runs: _Runs, adopt: bool = False) -> Any:
    """Run it in this process; stopped by a ``tibackup delete`` of it, say that (not how to rerun it)."""
    try:
        return runs.run_in_process(store, resource, adopt=True) if adopt else runs.run_in_process(store, resource)
    except (KeyboardInterrupt, Interrupted):
        ns, name = lifecycle.namespace_of(resource), resource.metadata.name
        now = runs.current(store, ns, name)
        if now is not None and now.metadata.deletion_timestamp is None:
            raise
        kept = (
            "the rows it loaded stay in the target (deleting a Restore never touches data)"
            if isinstance(resource, Restore)
            else "its data goes or stays per its spec.cleanPolicy"
        )
        kind = resource.kind.lower()
        raise Interrupted(f'{kind} "{name}" was deleted while it ran, which stopped it: {kept}') from None


def _wait_for(store: Store, applied: Backup, claimed: bool) -> Backup:
    result = _wait_for_run(store, applied, claimed, _BACKUP_RUNS)
    assert isinstance(result, Backup)
    return result


def _wait_for_restore(store: Store, applied: Restore, claimed: bool) -> Restore:
    result = _wait_for_run(store, applied, claimed, _RESTORE_RUNS)
    assert isinstance(result, Restore)
    return result


def _removed_unreadable(store: Store, kind: str, namespace: str, name: str) -> bool:
    """Remove a row too large to read (see Store.get): its spec cannot be read, so nothing is cleaned."""
    try:
        store.get(kind, namespace, name)
    except UnreadableError:
        store.remove_named(kind, namespace, name)
        click.echo(
            f'{RESOURCE_NAME[kind]} "{name}" deleted (it was too large to read: nothing of it was cleaned)'
        )
        return True
    return False


def _hint_controller(store: Store, resources: list[Resource]) -> None:
    from tibackup.embedded.controller import controller_running

    if not controller_running(store.state_dir):
        click.echo(
            "note: no controller is running; start `tibackup controller` to run Backups, Restores and "
            "schedules (or apply a Backup or Restore again with --wait)",
            err=True,
        )


@click.command(
    epilog="""\b
Examples:
  tibackup delete bk demo1-backup-s3 -n test1        # data removed or kept per spec.cleanPolicy
  tibackup delete bks demo1-backup-schedule-s3 -n test1   # and the Backups it created
  tibackup delete bk demo1-backup-s3 --no-wait       # leave the cleanup to the controller
  tibackup delete secret s3-secret -n test1
"""
)
@click.argument("type_", metavar="TYPE[,TYPE…]|TYPE/NAME")
@click.argument("names", nargs=-1)
@namespace_option
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Clean up now, or leave it to the controller."
)
@state_dir_option
def delete(type_: str, names: tuple[str, ...], namespace: str, wait: bool, state_dir: Path | None) -> None:
    """Delete Backups (their data per spec.cleanPolicy), BackupSchedules (with their Backups), Restores or Secrets."""
    from tibackup.cli.get_view import parse_targets

    targets = parse_targets(type_, names)
    if not all(target_names for _, target_names in targets):
        raise UsageError("resource(s) were provided, but no name was specified; name what to delete")
    store = open_store(state_dir)
    for kind, target_names in targets:
        _delete_kind(store, kind, tuple(target_names), namespace, wait)


def _delete_kind(store: Store, kind: str, names: tuple[str, ...], namespace: str, wait: bool) -> None:
    if kind == "Secret":
        for name in names:
            if not store.delete_secret(namespace, name):
                raise KubectlNotFound(f'secrets "{name}" not found in namespace "{namespace}"')
            click.echo(f'secret "{name}" deleted')
        return
    names = tuple(n for n in names if not _removed_unreadable(store, kind, namespace, n))
    if not names:
        return
    found = selected(store, kind, names, namespace, None)
    if not wait:
        for resource in found:
            store.mark_deleted(resource)
            click.echo(f'{type_name(kind, resource.api_version)} "{resource.metadata.name}" marked for deletion')
        _hint_controller(store, found)
        return
    from tibackup.cli.main import setup_logging

    setup_logging("warn")
    failed: list[Backup] = []
    for resource in found:
        if isinstance(resource, Restore):
            restores.delete_restore(store, resource)
        elif isinstance(resource, BackupSchedule):
            result = lifecycle.delete_schedule(store, resource)
            for name in result.deleted:
                click.echo(f'{type_name(KIND_BACKUP, resource.api_version)} "{name}" deleted')  # in its group
            failed += result.failed
        else:
            remaining = lifecycle.delete_backup(store, resource)
            if remaining is not None:
                failed.append(remaining)
                continue
        click.echo(f'{type_name(kind, resource.api_version)} "{resource.metadata.name}" deleted')
    if failed:
        first = failed[0]
        cond = first.status.condition(Phase.CLEAN_FAILED)
        why = f": {cond.message}" if cond and cond.message else ""
        click.echo(
            f"error: backup {first.metadata.name} could not be cleaned and stays (CleanFailed){why}; "
            "fix the cause and delete it again",
            err=True,
        )
        raise SystemExit(1)
