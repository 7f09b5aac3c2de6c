"""Options and lookups shared by the embedded runtime's verbs (``apply``, ``get``, ``controller`` …)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tibackup.embedded.paths import ENV_STATE_DIR, default_state_dir
from tibackup.embedded.store import KIND_BACKUP, KIND_SCHEDULE, Store
from tibackup.errors import UsageError
from tibackup.resources.validation import validate_name, validate_namespace

if TYPE_CHECKING:
    from tibackup.resources.loader import Resource

F = TypeVar("F", bound=Callable[..., Any])

# What `kubectl get <type>` accepts for our kinds, and the canonical names kubectl prints.
KIND_ALIASES = {
    "bk": KIND_BACKUP,
    "backup": KIND_BACKUP,
    "backups": KIND_BACKUP,
    "backup.pingcap.com": KIND_BACKUP,
    "backups.pingcap.com": KIND_BACKUP,
    "bks": KIND_SCHEDULE,
    "backupschedule": KIND_SCHEDULE,
    "backupschedules": KIND_SCHEDULE,
    "backupschedule.pingcap.com": KIND_SCHEDULE,
    "backupschedules.pingcap.com": KIND_SCHEDULE,
    "rt": "Restore",
    "restore": "Restore",
    "restores": "Restore",
    "restore.pingcap.com": "Restore",
    "restores.pingcap.com": "Restore",
    "secret": "Secret",
    "secrets": "Secret",
}
RESOURCE_NAME = {
    KIND_BACKUP: "backup.pingcap.com",
    KIND_SCHEDULE: "backupschedule.pingcap.com",
    "Restore": "restore.pingcap.com",
    "Secret": "secret",
}
PLURAL_NAME = {
    KIND_BACKUP: "backups.pingcap.com",
    KIND_SCHEDULE: "backupschedules.pingcap.com",
    "Restore": "restores.pingcap.com",
    "Secret": "secrets",
}


def type_name(kind: str, api_version: str) -> str:
    """``kind.group`` as kubectl prints an object's type: the group its apiVersion names (``pingcap.com``
    or ``backup.tibackup.io``), so ``backup.backup.tibackup.io`` for a Backup of tibackup's group."""
    return f"{kind.lower()}.{api_version.split('/', 1)[0]}"


def object_name(resource: Resource) -> str:
    """``kind.group/name``, as ``apply`` and ``get -o name`` print one object."""
    return f"{type_name(resource.kind, resource.api_version)}/{resource.metadata.name}"


def kind_of(word: str, allow_secret: bool = True) -> str:
    kind = KIND_ALIASES.get(word.lower())
    if kind is None or (kind == "Secret" and not allow_secret):
        known = "bk, backup(s), bks, backupschedule(s), rt, restore(s)" + (", secret(s)" if allow_secret else "")
        raise UsageError(f'the server doesn\'t have a resource type "{word}"; use one of: {known}')
    return kind


def state_dir_option(func: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=ENV_STATE_DIR,
        default=None,
        help=f"State directory (default: ${ENV_STATE_DIR}, $XDG_STATE_HOME/tibackup or "
        "~/.local/state/tibackup).",
    )(func)


def valid_namespace(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a namespace given on the command line is a DNS-1123 label, or the command stops."""
    if value is not None:
        validate_namespace(value, "--namespace")
    return value


def valid_names(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: object names given on the command line are DNS-1123 subdomains."""
    for name in (value,) if isinstance(value, str) else value or ():
        validate_name(name, "NAME")
    return value


def namespace_option(func: F) -> F:
    return click.option(
        "-n",
        "--namespace",
        default="default",
        show_default=True,
        callback=valid_namespace,
        help="Namespace of the objects.",
    )(func)


def open_store(state_dir: Path | None, read_only: bool = False) -> Store:
    """``read_only``: for verbs that only read (get, describe), which keep working on a full disk."""
    return Store(state_dir if state_dir is not None else default_state_dir(), read_only=read_only)
