"""The controller's pass over the upload journals: abort what ended runs could not abort (S3 was down).

Each Backup's runs note their multipart uploads under ``<state>/uploads/<ns>/<name>/`` until completed
or aborted (``manager.uploads``). A journal that still holds records of processes that are gone means
S3 was unreachable when the run ended; each pass tries again (at most once a minute per Backup, so a
dead endpoint does not slow the controller down), and once S3 answers the uploads are aborted, a
Normal event ``UploadsAborted`` says so and the ``Failed`` message no longer says uploads remain.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from tibackup.embedded.procs import process_alive
from tibackup.embedded.runtime import EmbeddedRuntime
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.errors import TibackupError
from tibackup.manager import uploads
from tibackup.resources import Backup
from tibackup.storage.journal import FileJournal

log = logging.getLogger("tibackup.controller")
RETRY_SECONDS = 60.0


class LeftoverUploads:
    def __init__(self, store: Store, retry: float = RETRY_SECONDS) -> None:
        self.store = store
        self.retry = retry
        self._tried: dict[tuple[str, str], float] = {}

    def journals(self) -> list[tuple[str, str, FileJournal]]:
        root = self.store.state_dir / "uploads"
        found = []
        for folder in sorted(root.glob("*/*")) if root.is_dir() else ():
            found.append((folder.parent.name, folder.name, FileJournal(folder)))
        return found

    def tick(self) -> None:
        """One pass; Backups whose run is alive are left alone (their uploads are theirs)."""
        running = {(r.namespace, r.name) for r in self.store.runs() if process_alive(r.pid, r.pid_started)}
        for namespace, name, journal in self.journals():
            key = (namespace, name)
            records = [r for r in journal.pending() if not r.process_alive()]
            if key in running or not records:
                _remove_if_empty(journal.folder)
                continue
            if time.monotonic() - self._tried.get(key, -self.retry) < self.retry:
                continue
            self._tried[key] = time.monotonic()
            backup = self.store.get(KIND_BACKUP, namespace, name)
            if not isinstance(backup, Backup):
                log.warning(
                    "backup %s/%s is gone but %d unfinished upload(s) it started are noted in %s: abort them "
                    "by hand or let the bucket's lifecycle rule do it", namespace, name, len(records), journal.folder,
                )  # fmt: skip
                continue
            self.abort(backup, len(records))

    def abort(self, backup: Backup, noted: int) -> None:
        runtime = EmbeddedRuntime(self.store)
        who = f"{backup.metadata.namespace}/{backup.metadata.name}"
        try:
            aborted = uploads.abort_leftovers(backup, runtime)
        except TibackupError as exc:
            log.info("backup %s: %d unfinished upload(s) still to abort: %s", who, noted, exc.message)
            return
        self._tried.pop((backup.metadata.namespace or "default", backup.metadata.name), None)
        message = f"aborted {aborted} unfinished multipart upload(s) left when S3 did not answer"
        log.info("backup %s: %s", who, message)
        runtime.event(backup, "Normal", "UploadsAborted", message)
        current = self.store.get(KIND_BACKUP, backup.metadata.namespace or "default", backup.metadata.name)
        if isinstance(current, Backup) and uploads.settle_note(current):
            runtime.save_status(current)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when empty
