"""``describe`` output, laid out as ``kubectl describe`` lays out a custom resource."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tibackup.cli.table_view import age, render_table
from tibackup.embedded.store import Event
from tibackup.resources import Backup, BackupSchedule, Restore, to_dict
from tibackup.resources.meta import rfc3339

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def title(key: str) -> str:
    """``secretName`` → ``Secret Name``, ``tikvGCLifeTime`` → ``Tikv GC Life Time`` (kubectl's spelling)."""
    words = _WORDS.findall(key) or [key]
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _block(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        width = max((len(title(k)) for k in value), default=0) + 2
        for key, item in value.items():
            label = f"{title(key)}:"
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{label}")
                lines.extend(_block(item, indent + 1))
            else:
                lines.append(f"{pad}{label.ljust(width)}{_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                lines.extend(_block(item, indent))
            else:
                lines.append(f"{pad}{_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or value == {} or value == []:
        return "<none>"
    return str(value)


def _mapping(values: dict[str, str] | None) -> list[str]:
    if not values:
        return ["<none>"]
    return [f"{k}={v}" for k, v in sorted(values.items())]


def describe(resource: Backup | BackupSchedule | Restore, events: list[Event], now: datetime) -> str:
    meta = resource.metadata
    document = to_dict(resource)
    lines = [
        f"Name:         {meta.name}",
        f"Namespace:    {meta.namespace or 'default'}",
    ]
    labels = _mapping(meta.labels)
    lines.append(f"Labels:       {labels[0]}")
    lines.extend(f"              {label}" for label in labels[1:])
    annotations = _mapping(meta.annotations)
    lines.append(f"Annotations:  {annotations[0]}")
    lines.extend(f"              {a}" for a in annotations[1:])
    lines += [f"API Version:  {resource.api_version}", f"Kind:         {resource.kind}", "Metadata:"]
    meta_view: dict[str, Any] = {}
    if meta.creation_timestamp:
        meta_view["creationTimestamp"] = rfc3339(meta.creation_timestamp)
    if meta.deletion_timestamp:
        meta_view["deletionTimestamp"] = rfc3339(meta.deletion_timestamp)
    if meta.owner_references:
        meta_view["ownerReferences"] = [
            {"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "uid": o.uid}
            for o in meta.owner_references
        ]
    meta_view["resourceVersion"] = meta.resource_version
    meta_view["uid"] = meta.uid
    lines.extend(_block(meta_view, 1))
    lines.append("Spec:")
    lines.extend(_block(document.get("spec", {}), 1))
    status = dict(document.get("status") or {})
    conditions = status.pop("conditions", None) or []
    lines.append("Status:" if status else "Status:       <none>")
    if status:
        lines.extend(_block(status, 1))
    if isinstance(resource, Backup | Restore):
        lines.append("Conditions:" if conditions else "Conditions:   <none>")
        if conditions:
            rows = [
                [
                    str(c.get("type", "")),
                    str(c.get("status", "")),
                    str(c.get("reason") or ""),
                    str(c.get("message") or ""),
                    str(c.get("lastTransitionTime") or ""),
                ]
                for c in conditions
            ]
            table = render_table(["Type", "Status", "Reason", "Message", "Last Transition Time"], rows)
            lines.extend("  " + line for line in table.splitlines())
    lines.append(events_block(events, now))
    return "\n".join(lines)


def events_block(events: list[Event], now: datetime) -> str:
    if not events:
        return "Events:       <none>"
    rows = []
    for event in events:
        when = age(event.last_time, now)
        if event.count > 1:
            when = f"{when} (x{event.count} over {age(event.first_time, now)})"
        rows.append([event.type, event.reason, when, "tibackup", event.message])
    table = render_table(["Type", "Reason", "Age", "From", "Message"], rows)
    header, *body = table.splitlines()
    rule = render_table(
        ["Type", "Reason", "Age", "From", "Message"],
        [["-" * 4, "-" * 6, "-" * 3, "-" * 4, "-" * 7], *rows],
    ).splitlines()[1]
    return "\n".join(["Events:", "  " + header, "  " + rule, *("  " + line for line in body)])
