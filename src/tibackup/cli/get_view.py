"""What ``get`` prints, as kubectl prints it: TYPE[,TYPE] and TYPE/NAME arguments, ``-o`` forms
(wide, json, yaml, name, jsonpath=…, custom-columns=…), ``--sort-by``, ``--show-labels``, ``--no-headers``
and ``-w`` (print each change until interrupted)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import click

from tibackup.cli.embedded_opts import kind_of, object_name
from tibackup.cli.jsonpath import Template, format_value, relaxed
from tibackup.cli.table_view import (
    TableOptions,
    echo_documents,
    echo_none_found,
    render_table,
    table_rows,
)
from tibackup.embedded.store import KIND_BACKUP, KIND_SCHEDULE
from tibackup.errors import UsageError
from tibackup.resources import Backup, BackupSchedule, Resource, Restore, to_dict
from tibackup.resources.validation import validate_name

FORMATS = ("wide", "json", "yaml", "name", "jsonpath=…", "custom-columns=…")
WATCH_INTERVAL = 1.0  # seconds between two looks at the state while watching


@dataclass(frozen=True)
class Output:
    form: str  # "table", "wide", "json", "yaml", "name", "jsonpath" or "custom-columns"
    argument: str = ""


def parse_output(value: str | None) -> Output:
    if not value:
        return Output("table")
    if value in ("wide", "json", "yaml", "name"):
        return Output(value)
    form, has_argument, argument = value.partition("=")
    if form in ("jsonpath", "custom-columns") and has_argument and argument:
        if form == "jsonpath":
            Template(argument)  # a syntax error stops the command before anything is read
        else:
            custom_columns(argument)
        return Output(form, argument)
    raise UsageError(
        f'unable to match a printer suitable for the output format "{value}", allowed formats are: '
        + ",".join(FORMATS)
    )


def parse_targets(type_: str, names: Sequence[str], allow_secret: bool = True) -> list[tuple[str, list[str]]]:
    """``bk``, ``bk,bks`` (names looked up in each) or ``bk/a bks/b``: (kind, names) in order, every
    name a valid DNS-1123 subdomain."""
    targets = _targets(type_, names, allow_secret)
    for _, target_names in targets:
        for name in target_names:
            validate_name(name, "NAME")
    return targets


def namespace_for(targets: list[tuple[str, list[str]]], namespace: str, all_namespaces: bool) -> str | None:
    """The namespace to read (None: all); ``-A`` counts only when no name is given, as kubectl."""
    named = any(target_names for _, target_names in targets)
    return None if all_namespaces and not named else namespace


def _targets(type_: str, names: Sequence[str], allow_secret: bool) -> list[tuple[str, list[str]]]:
    if "/" in type_:
        targets: dict[str, list[str]] = {}
        for word in (type_, *names):
            kind_word, slash, name = word.partition("/")
            if not slash or not name:
                raise UsageError(
                    f"there is no need to specify a resource type as a separate argument when passing "
                    f"arguments in resource/name form (e.g. 'tibackup get bk/NAME'): {word!r}"
                )
            targets.setdefault(kind_of(kind_word, allow_secret), []).append(name)
        return list(targets.items())
    kinds = list(dict.fromkeys(kind_of(word, allow_secret) for word in type_.split(",") if word))
    if not kinds:
        raise UsageError("name a resource type: bk, bks, rt or secret")
    return [(kind, list(names)) for kind in kinds]


def custom_columns(spec: str) -> list[tuple[str, Template]]:
    columns = []
    for part in spec.split(","):
        header, colon, expression = part.partition(":")
        if not colon or not header or not expression:
            raise UsageError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        columns.append((header, relaxed(expression)))
    return columns


def sort_resources(resources: list[Resource], expression: str) -> list[Resource]:
    """kubectl's ``--sort-by``: ascending by the value at the JSONPath, objects without it first."""
    template = relaxed(expression)

    def key(resource: Resource) -> tuple[int, Any]:
        values = template.values(to_dict(resource))
        if not values:
            return (0, "")
        value = values[0]
        if isinstance(value, bool | int | float):
            return (1, float(value))
        return (2, value if isinstance(value, str) else json.dumps(value, sort_keys=True))

    return sorted(resources, key=key)


@dataclass(frozen=True)
class Listing:
    """One ``get``: what to show and how; ``single`` when one object was named (shown as itself)."""

    output: Output
    table: TableOptions
    single: bool
    now: Callable[[], datetime]
    namespace: str | None  # None: every namespace


def print_listing(listing: Listing, found: list[tuple[str, list[Resource]]]) -> None:
    output = listing.output
    everything = [r for _, items in found for r in items]
    if output.form in ("json", "yaml"):
        echo_documents([to_dict(r) for r in everything], single=listing.single, output=output.form)
        return
    if output.form == "name":
        for resource in everything:
            click.echo(object_name(resource))
        return
    if output.form == "jsonpath":
        click.echo(Template(output.argument).render(_data(everything, listing.single)), nl=False)
        return
    if not everything:
        echo_none_found(listing.namespace)
        return
    if output.form == "custom-columns":
        click.echo(custom_columns_table(everything, output.argument, listing.table.no_headers))
        return
    tables = []
    several = len(found) > 1
    for kind, items in found:
        if not items:
            continue
        options = replace(listing.table, type_prefix=several)
        headers, rows = table_rows(items, _model(kind), listing.now(), options)
        tables.append(render_table(headers, rows, min_width=6, headers_shown=not options.no_headers))
    click.echo("\n\n".join(tables))


def custom_columns_table(resources: Sequence[Resource], spec: str, no_headers: bool) -> str:
    columns = custom_columns(spec)
    rows = []
    for resource in resources:
        document = to_dict(resource)
        rows.append([",".join(format_value(v) for v in t.values(document)) or "<none>" for _, t in columns])
    return render_table([h for h, _ in columns], rows, min_width=6, headers_shown=not no_headers)


def watch(listing: Listing, kind: str, read: Callable[[], list[Resource]], shown: list[Resource]) -> None:
    """``get -w``: after the listing, print each object that appears, changes or goes, until interrupted."""
    last = {_key(r): (r, json.dumps(to_dict(r), sort_keys=True)) for r in shown}
    try:
        while True:
            time.sleep(WATCH_INTERVAL)
            current = {_key(r): r for r in read()}
            changed = [r for key, r in current.items() if last.get(key, (None, ""))[1] != _text(r)]
            gone = [resource for key, (resource, _) in last.items() if key not in current]
            for resource in changed + gone:
                _print_event(listing, kind, resource)
            last = {key: (r, _text(r)) for key, r in current.items()}
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # as kubectl: Ctrl-C ends a watch without a message


def _print_event(listing: Listing, kind: str, resource: Resource) -> None:
    output = listing.output
    if output.form in ("json", "yaml"):
        echo_documents([to_dict(resource)], single=True, output=output.form)
    elif output.form == "name":
        click.echo(object_name(resource))
    elif output.form == "jsonpath":
        click.echo(Template(output.argument).render(to_dict(resource)), nl=False)
    elif output.form == "custom-columns":
        click.echo(custom_columns_table([resource], output.argument, no_headers=True))
    else:
        headers, rows = table_rows([resource], _model(kind), listing.now(), listing.table)
        click.echo(render_table(headers, rows, min_width=6, headers_shown=False))


def _text(resource: Resource) -> str:
    return json.dumps(to_dict(resource), sort_keys=True)


def _key(resource: Resource) -> tuple[str, str]:
    return (resource.metadata.namespace or "default", resource.metadata.name)


def _data(resources: list[Resource], single: bool) -> Any:
    if single and len(resources) == 1:
        return to_dict(resources[0])
    return {"apiVersion": "v1", "items": [to_dict(r) for r in resources], "kind": "List"}


def _model(kind: str) -> type[Backup] | type[BackupSchedule] | type[Restore]:
    return Backup if kind == KIND_BACKUP else BackupSchedule if kind == KIND_SCHEDULE else Restore
