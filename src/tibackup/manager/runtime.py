"""What the backup manager needs from whatever runs it: the embedded store or the Kubernetes API.

The manager (``tibackup.manager.run``) is written once against this protocol; the embedded runtime
implements it over SQLite and files, the Kubernetes Job over the API server. Nothing in the manager
knows which one it is talking to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from tibackup.resources import Backup, Restore


class SecretSource(Protocol):
    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's data, decoded. Raise ``tibackup.errors.NotFoundError`` naming it when it is missing."""


class BackupRuntime(Protocol):
    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's data, decoded. Raise ``tibackup.errors.NotFoundError`` naming it when it is missing."""

    def save_status(self, backup: Backup | Restore) -> None:
        """Persist ``backup.status`` (the whole status object) so ``get``/``describe`` show it at once."""

    def event(self, backup: Backup | Restore, type_: str, reason: str, message: str) -> None:
        """Record an event on the Backup: type_ is 'Normal' or 'Warning'; reason is CamelCase."""

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        """Durably remember (or, with None, forget) the GC life time the manager changed, before it changes
        it, so that a killed backup can still restore it later (``recover``)."""

    def load_gc_record(self, backup: Backup) -> dict[str, Any] | None: ...

    def staging_dir(self, backup: Backup) -> Path:
        """Where this Backup stages its files in staged mode (kept across re-runs of the same Backup)."""


class RestoreRuntime(BackupRuntime, Protocol):
    """What a Restore run needs beyond a Backup run's runtime (``manager.restore_run``)."""

    def get_backup(self, namespace: str, name: str) -> Backup | None:
        """The Backup of that name (a Restore's ``spec.tibackup.fromBackup``), None when there is none."""
