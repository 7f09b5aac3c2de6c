"""Tells the world what a backup (or restore) run is doing: status through the runtime, events, and the log.

Every message passes ``Secrets.scrub`` on the way out, so no Secret value can reach status, an event
or the log even if an underlying error echoed one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from tibackup.manager import phases
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.secrets import Secrets
from tibackup.resources import Backup, Restore, RunStatus

log = logging.getLogger("tibackup.manager")
R = TypeVar("R", Backup, Restore)


class Reporter(Generic[R]):
    def __init__(self, backup: R, runtime: BackupRuntime, now: Callable[[], datetime]) -> None:
        self.backup: R = backup
        self.runtime, self.now = runtime, now
        self.secrets = Secrets()
        meta = backup.metadata
        self.who = f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name
        self.noun = backup.kind.lower()

    def clean(self, text: str) -> str:
        return phases.one_line(self.secrets.scrub(str(text)))

    def info(self, reason: str, message: str) -> None:
        """A step went well: a Normal event and an info line."""
        message = self.clean(message)
        log.info("%s %s: %s", self.noun, self.who, message)
        self.runtime.event(self.backup, "Normal", reason, message)

    def warning(self, reason: str, message: str, logged: bool = False) -> None:
        """A Warning event and a warning line; ``logged``: the engine already logged the line (the
        event only, so the log says it once)."""
        message = self.clean(message)
        if not logged:
            log.warning("%s %s: %s", self.noun, self.who, message)
        self.runtime.event(self.backup, "Warning", reason, message)

    def _save(self, status: RunStatus) -> R:
        # The phase helpers copy the status they are given, so a RestoreStatus stays one.
        self.backup.status = status  # type: ignore[assignment,unused-ignore]
        self.runtime.save_status(self.backup)
        return self.backup

    def update(self, status: RunStatus, save: bool = True) -> R:
        """Replace the status (e.g. a condition that is not a phase); saved at once unless ``save`` is False."""
        if not save:
            self.backup.status = status  # type: ignore[assignment,unused-ignore]
            return self.backup
        return self._save(status)

    def prepare(self, message: str) -> None:
        self._save(phases.to_prepare(self.backup.status, self.clean(message), self.now()))
        self.info("Prepare", message)

    def running(self, backup_path: str, message: str) -> None:
        self._save(phases.to_running(self.backup.status, backup_path, self.clean(message), self.now()))
        self.info("Running", message)

    def verified(self, size: int, commit_ts: str, message: str) -> None:
        """The folder is verified complete: saved before the last steps, so a stop cannot undo it."""
        self._save(phases.to_verified(self.backup.status, size, commit_ts, self.clean(message), self.now()))
        log.info("%s %s: verified: %s", self.noun, self.who, self.clean(message))

    def complete(self, size: int, commit_ts: str, message: str) -> R:
        backup = self._save(
            phases.to_complete(self.backup.status, size, commit_ts, self.clean(message), self.now())
        )
        self.info("Complete", message)
        return backup

    def failed(self, reason: str, message: str) -> R:
        message = self.clean(message)
        backup = self._save(phases.to_failed(self.backup.status, reason, message, self.now()))
        self.warning(reason, message)
        return backup

    def invalid(self, reason: str, message: str) -> R:
        message = self.clean(message)
        backup = self._save(phases.to_invalid(self.backup.status, reason, message, self.now()))
        self.warning(reason, message)
        return backup
