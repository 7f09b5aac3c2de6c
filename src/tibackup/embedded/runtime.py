"""``EmbeddedRuntime``: the backup manager's view of the embedded store (``manager.runtime.BackupRuntime``).

Secret values handed to the manager are remembered and masked in every status message and event it
writes, so a driver error that echoes a password cannot leak it into ``get``/``describe``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tibackup.embedded.paths import staging_dir, uploads_dir
from tibackup.embedded.store import Store
from tibackup.errors import NotFoundError
from tibackup.resources import Backup, Restore
from tibackup.storage.journal import FileJournal

MASK = "******"
_MIN_MASKED = 4  # shorter values are too likely to be ordinary words


def redact(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value of at least 4 characters replaced by ``******``."""
    for value in sorted(secrets, key=len, reverse=True):
        if len(value) >= _MIN_MASKED and value in text:
            text = text.replace(value, MASK)
    return text


class EmbeddedRuntime:
    """Implements ``BackupRuntime`` over a ``Store`` (SQLite) and the state directory's staging area."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._secrets: set[str] = set()

    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        data = self.store.get_secret(namespace, name)
        if data is None:
            raise NotFoundError(
                f'secret "{name}" not found in namespace "{namespace}"; create it with '
                f"`tibackup create secret generic {name} -n {namespace} --from-literal=KEY=VALUE`"
            )
        self._secrets.update(data.values())
        return data

    def save_status(self, backup: Backup | Restore) -> None:
        status = backup.status
        if self._secrets and status.conditions:
            conditions = [
                cond.model_copy(update={"message": redact(cond.message, self._secrets)})
                if cond.message
                else cond
                for cond in status.conditions
            ]
            status = status.model_copy(update={"conditions": conditions})
        self.store.update_status(backup.model_copy(update={"status": status}))

    def event(self, backup: Backup | Restore, type_: str, reason: str, message: str) -> None:
        self.store.add_event(backup, type_, reason, redact(message, self._secrets))

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        meta = backup.metadata
        self.store.save_gc_record(meta.namespace or "default", meta.name, meta.uid or "", record)

    def load_gc_record(self, backup: Backup) -> dict[str, Any] | None:
        meta = backup.metadata
        return self.store.load_gc_record(meta.namespace or "default", meta.name, meta.uid or "")

    def get_backup(self, namespace: str, name: str) -> Backup | None:
        found = self.store.get("Backup", namespace, name)
        return found if isinstance(found, Backup) else None

    def staging_dir(self, backup: Backup) -> Path:
        meta = backup.metadata
        return staging_dir(self.store.state_dir, meta.namespace or "default", meta.name)

    def upload_journal(self, backup: Backup) -> FileJournal:
        """Where the Backup's runs note their multipart uploads until completed or aborted."""
        namespace = backup.metadata.namespace or "default"
        folder = uploads_dir(self.store.state_dir, namespace, backup.metadata.name)
        return FileJournal(folder, owner=f"{namespace}/{backup.metadata.name}")
