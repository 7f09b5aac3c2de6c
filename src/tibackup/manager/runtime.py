"""What the backup manager needs from whatever runs it: the embedded store or the Kubernetes API.

The manager (``tibackup.manager.run``) is written once against this protocol; the embedded runtime
implements it over SQLite and files, the Kubernetes Job over the API server. Nothing in the manager
knows which one it is talking to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from tibackup.resources import Backup


class BackupRuntime(Protocol):
    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's data, decoded. Raise ``tibackup.errors.NotFoundError`` naming it when it is missing."""

    def save_status(self, backup: Backup) -> None:
        """Persist ``backup.status`` (the whole status object) so ``get``/``describe`` show it at once."""

    def event(self, backup: Backup, type_: str, reason: str, message: str) -> None:
        """Record an event on the Backup: type_ is 'Normal' or 'Warning'; reason is CamelCase."""

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        """Durably remember (or, with None, forget) the GC life time the manager changed, before it changes
        it, so that a killed backup can still restore it later (``recover``)."""

    def load_gc_record(self, backup: Backup) -> dict[str, Any] | None: ...

    def staging_dir(self, backup: Backup) -> Path:
        """Where this Backup stages its files in staged mode (kept across re-runs of the same Backup)."""
