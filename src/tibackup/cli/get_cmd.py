"""The embedded runtime's reading verbs, as kubectl spells them: ``get`` and ``describe``."""

from __future__ import annotations

from pathlib import Path

import click

from tibackup.cli.embedded_opts import (
    PLURAL_NAME,
    namespace_option,
    open_store,
    state_dir_option,
)
from tibackup.embedded import lifecycle
from tibackup.embedded.selector import parse_selector
from tibackup.embedded.store import KIND_BACKUP, KIND_SCHEDULE, Store
from tibackup.errors import NotFoundError, UsageError
from tibackup.resources import Resource


class KubectlNotFound(NotFoundError):
    exit_code = 1  # what kubectl exits with for a NotFound


def selected(
    store: Store, kind: str, names: tuple[str, ...], namespace: str | None, selector: str | None
) -> list[Resource]:
    if names:
        if selector:
            raise UsageError("name cannot be provided when a selector is specified")
        assert namespace is not None
        found = []
        for name in names:
            resource = store.get(kind, namespace, name)
            if resource is None:
                raise KubectlNotFound(f'{PLURAL_NAME[kind]} "{name}" not found in namespace "{namespace}"')
            found.append(resource)
        return found
    return store.list_resources(kind, namespace, parse_selector(selector) if selector else None)


@click.command(
    epilog="""\b
Examples:
  tibackup get bk -n test1 -o wide
  tibackup get bk,bks -n test1 --show-labels
  tibackup get bk/demo1-backup-s3 -n test1 -o jsonpath='{.status.backupPath}'
  tibackup get bk -n test1 -o custom-columns=NAME:.metadata.name,PATH:.status.backupPath
  tibackup get bk -n test1 --sort-by=.metadata.creationTimestamp --no-headers
  tibackup get bk -l tidb.pingcap.com/backup-schedule=demo1-backup-schedule-s3 -n test1 -w
  tibackup get bk -A
  tibackup get rt -n test1 -o wide
  tibackup get rt/demo1-restore-s3 -n test1 -o jsonpath='{.status.phase}'
  tibackup get secret -n test1
"""
)
@click.argument("type_", metavar="TYPE[,TYPE…]|TYPE/NAME")
@click.argument("names", nargs=-1)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True, help="List the objects of every namespace.")
@click.option(
    "-o", "--output", default=None, help="wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=SPEC."
)
@click.option("-l", "--selector", default=None, help="Label selector: k=v, k!=v, k, !k, 'k in (a,b)'.")
@click.option("--sort-by", default=None, help="Sort by the value at this JSONPath, e.g. .metadata.name.")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("--no-headers", is_flag=True, help="Leave out the header line of tables.")
@click.option("-w", "--watch", is_flag=True, help="After the listing, print every change until Ctrl-C.")
@state_dir_option
def get(
    type_: str,
    names: tuple[str, ...],
    namespace: str,
    all_namespaces: bool,
    output: str | None,
    selector: str | None,
    sort_by: str | None,
    show_labels: bool,
    no_headers: bool,
    watch: bool,
    state_dir: Path | None,
) -> None:
    """List Backups (bk), BackupSchedules (bks), Restores (rt) or Secrets, as kubectl get does."""
    from tibackup.cli import get_view
    from tibackup.cli.secret_cmd import print_secrets
    from tibackup.cli.table_view import TableOptions

    targets = get_view.parse_targets(type_, names)
    form = get_view.parse_output(output)
    store = open_store(state_dir, read_only=True)
    ns = get_view.namespace_for(targets, namespace, all_namespaces)
    if targets[0][0] == "Secret" and len(targets) == 1:
        if form.form not in ("table", "wide", "json", "yaml", "name") or sort_by or show_labels or watch:
            raise UsageError("Secrets are listed with -o wide|json|yaml|name only (no jsonpath, custom-columns, "
                             "--sort-by, --show-labels or -w)")  # fmt: skip
        print_secrets(store, ns, tuple(targets[0][1]), output)
        return
    if "Secret" in (kind for kind, _ in targets):
        raise UsageError("list Secrets on their own: tibackup get secret")
    if watch and len(targets) > 1:
        raise UsageError("you may only specify a single resource type when watching (-w)")
    found: list[tuple[str, list[Resource]]] = []
    for kind, target_names in targets:
        items = selected(store, kind, tuple(target_names), ns, selector)
        found.append((kind, get_view.sort_resources(items, sort_by) if sort_by else items))
    _warn_unreadable(store)
    listing = get_view.Listing(
        output=form,
        table=TableOptions(
            wide=form.form == "wide",
            all_namespaces=ns is None,
            show_labels=show_labels,
            no_headers=no_headers,
        ),
        single=sum(len(n) for _, n in targets) == 1,
        now=lifecycle.now,
        namespace=ns,
    )
    get_view.print_listing(listing, found)
    if watch:
        kind, target_names = targets[0]
        get_view.watch(
            listing, kind, lambda: _present(store, kind, tuple(target_names), ns, selector), found[0][1]
        )


def _present(
    store: Store, kind: str, names: tuple[str, ...], namespace: str | None, selector: str | None
) -> list[Resource]:
    """What a watch sees now: the named objects that exist, or every object the selector matches."""
    if not names:
        return selected(store, kind, names, namespace, selector)
    assert namespace is not None
    return [r for r in (store.get(kind, namespace, name) for name in names) if r is not None]


def _warn_unreadable(store: Store) -> None:
    for kind, where, name in sorted(store.unreadable):
        short = {KIND_BACKUP: "bk", KIND_SCHEDULE: "bks"}.get(kind, "rt")
        click.echo(
            f'warning: {PLURAL_NAME.get(kind, kind)} "{name}" in namespace "{where}" is too large to read and '
            f"left out (an older tibackup stored it); remove it with `tibackup delete {short} {name} -n {where}`",
            err=True,
        )


@click.command(
    epilog="""\b
Examples:
  tibackup describe bk demo1-backup-s3 -n test1
  tibackup describe bks demo1-backup-schedule-s3 -n test1
  tibackup describe rt demo1-restore-s3 -n test1
"""
)
@click.argument("type_", metavar="TYPE[,TYPE…]|TYPE/NAME")
@click.argument("names", nargs=-1)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True, help="Describe the objects of every namespace.")
@click.option("-l", "--selector", default=None, help="Label selector, as for get.")
@state_dir_option
def describe(
    type_: str,
    names: tuple[str, ...],
    namespace: str,
    all_namespaces: bool,
    selector: str | None,
    state_dir: Path | None,
) -> None:
    """Show a Backup, BackupSchedule or Restore in detail: spec, status, conditions and events.

    Without a name, every object of the type in the namespace is described."""
    from tibackup.cli import get_view
    from tibackup.cli.describe_view import describe as render
    from tibackup.cli.table_view import echo_none_found

    targets = get_view.parse_targets(type_, names, allow_secret=False)
    store = open_store(state_dir, read_only=True)
    now = lifecycle.now()
    ns = get_view.namespace_for(targets, namespace, all_namespaces)
    found: list[Resource] = []
    for kind, target_names in targets:
        found += selected(store, kind, tuple(target_names), ns, selector)
    if not found:
        echo_none_found(ns)
        return
    click.echo(
        "\n\n".join(
            render(r, store.events(r.kind, lifecycle.namespace_of(r), r.metadata.name), now) for r in found
        )
    )
