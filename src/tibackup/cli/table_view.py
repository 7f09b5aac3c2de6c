"""Tables as ``kubectl get`` prints them: upper-case headers, columns three spaces apart, ages like ``5m``.

The columns of Backup and BackupSchedule are the CRDs' printer columns (``resources.crd``), so the
embedded ``get`` and ``kubectl get`` on a cluster show the same thing; priority-1 columns need ``-o wide``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
import yaml

from tibackup.cli.embedded_opts import object_name
from tibackup.resources import Backup, BackupSchedule, Restore, to_dict
from tibackup.resources.meta import utc


def human_age(delta: timedelta) -> str:
    """A duration as kubectl's AGE column shows it: ``45s``, ``3m5s``, ``12m``, ``5h3m``, ``20h``, ``4d``."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def age(value: datetime | str | None, now: datetime) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return human_age(utc(now) - utc(value))


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], min_width: int = 0, headers_shown: bool = True
) -> str:
    """Left-aligned columns, three spaces apart, no trailing spaces; ``min_width`` counts the three
    spaces, as Go's tabwriter does (kubectl get: 6). Without headers, only the rows set the widths."""
    widths = [max(len(h) if headers_shown else 0, min_width - 3) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers)] * headers_shown + [list(r) for r in rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def labels_cell(labels: dict[str, str] | None) -> str:
    """kubectl's LABELS column (--show-labels): ``k=v`` sorted by key, comma-separated, or ``<none>``."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def _columns(model: type[Backup] | type[BackupSchedule] | type[Restore], wide: bool) -> list[dict[str, Any]]:
    from tibackup.resources.crd import crd

    columns: list[dict[str, Any]] = crd(model)["spec"]["versions"][0]["additionalPrinterColumns"]
    return [c for c in columns if wide or not c.get("priority")]


def _lookup(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _cell(column: dict[str, Any], document: dict[str, Any], now: datetime) -> str:
    value = _lookup(document, column["jsonPath"])
    if value is None:
        return ""
    if column["type"] == "date":
        return age(str(value), now)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass(frozen=True)
class TableOptions:
    """kubectl get's table flags: ``-o wide``, ``-A``, ``--show-labels``, ``--no-headers``; ``type_prefix``:
    each name as ``kind.group/name`` (its own group), as when several types are listed together."""

    wide: bool = False
    all_namespaces: bool = False
    show_labels: bool = False
    no_headers: bool = False
    type_prefix: bool = False


def table_rows(
    resources: Sequence[Backup | BackupSchedule | Restore],
    model: type[Backup] | type[BackupSchedule] | type[Restore],
    now: datetime,
    options: TableOptions,
) -> tuple[list[str], list[list[str]]]:
    columns = _columns(model, options.wide)
    headers = ["NAME", *(c["name"].upper() for c in columns)]
    if options.all_namespaces:
        headers.insert(0, "NAMESPACE")
    if options.show_labels:
        headers.append("LABELS")
    rows = []
    for resource in resources:
        document = to_dict(resource)
        row = [object_name(resource) if options.type_prefix else resource.metadata.name, *(_cell(c, document, now) for c in columns)]
        if options.all_namespaces:
            row.insert(0, resource.metadata.namespace or "default")
        if options.show_labels:
            row.append(labels_cell(resource.metadata.labels))
        rows.append(row)
    return headers, rows


def resource_table(
    resources: Sequence[Backup | BackupSchedule | Restore],
    model: type[Backup] | type[BackupSchedule] | type[Restore],
    now: datetime,
    wide: bool = False,
    all_namespaces: bool = False,
    options: TableOptions | None = None,
) -> str:
    """The ``get`` table of Backups or BackupSchedules (NAMESPACE first with ``-A``)."""
    options = options or TableOptions(wide=wide, all_namespaces=all_namespaces)
    headers, rows = table_rows(resources, model, now, options)
    return render_table(headers, rows, min_width=6, headers_shown=not options.no_headers)


def echo_documents(documents: list[dict[str, Any]], *, single: bool, output: str) -> None:
    """``-o json|yaml``: one object as itself, several as a kubectl-style List."""
    body = documents[0] if single else {"apiVersion": "v1", "items": documents, "kind": "List"}
    text = json.dumps(body, indent=4) if output == "json" else yaml.safe_dump(body, sort_keys=False)
    click.echo(text.rstrip("\n"))


def echo_none_found(namespace: str | None) -> None:
    where = "any namespace" if namespace is None else f"{namespace} namespace"
    click.echo(f"No resources found in {where}.", err=True)


def report_runs(results: list[Backup] | list[Restore], now: datetime) -> None:
    """After ``--wait``: the wide table of the Backups (or Restores), then exit 1 naming the first that
    Failed or is Invalid."""
    from tibackup.resources import Phase

    click.echo(resource_table(results, type(results[0]) if results else Backup, now, wide=True))
    bad = [b for b in results if b.status.phase in (Phase.FAILED, Phase.INVALID)]
    if bad:
        cond = bad[0].status.condition(bad[0].status.phase or Phase.FAILED)
        noun, short = ("restore", "rt") if isinstance(bad[0], Restore) else ("backup", "bk")
        reason = f"{cond.reason}: {cond.message}" if cond else f"see tibackup describe {short}"
        click.echo(f"error: {noun} {bad[0].metadata.name} {bad[0].status.phase}: {reason}", err=True)
        raise SystemExit(1)
