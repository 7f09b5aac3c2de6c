"""The unfinished multipart uploads of one Backup: noted while it runs, aborted once S3 answers again.

A writer aborts its own upload when it fails; when S3 itself is down or frozen that abort fails too,
and S3 would keep (and bill) the parts forever. So:

* every upload the run starts is noted in the runtime's journal (``runtime.upload_journal(backup)``:
  a folder under the embedded state directory; a Job without one keeps it in memory), and removed when
  the upload is completed or aborted;
* a run that ends with some still noted says so in its ``Failed`` message;
* ``abort_leftovers`` aborts them later — the embedded controller's pass, a re-run, a delete — together
  with every unfinished upload under the Backup's own ``backupPath`` (that folder is this Backup's alone,
  so a run on Kubernetes, whose journal died with its Pod, is cleaned by listing it).
"""

from __future__ import annotations

import dataclasses

from tibackup.errors import StorageError
from tibackup.manager import remote, settings
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.secrets import resolve_secrets
from tibackup.resources import Backup, Phase
from tibackup.storage import S3Options
from tibackup.storage.journal import FileJournal, MemoryJournal, UploadJournal, abort_recorded

LEFT_NOTE = "could not be aborted (S3 did not answer)"
ABORTED_LATER = "; its unfinished multipart uploads were aborted later"


def journal_for(runtime: BackupRuntime, backup: Backup) -> UploadJournal:
    """The runtime's durable journal for this Backup, or one in memory where the runtime has none."""
    make = getattr(runtime, "upload_journal", None)
    journal = make(backup) if callable(make) else None
    return journal if journal is not None else MemoryJournal()


def left_note(journal: UploadJournal, path: str) -> str:
    """For a failed run's message: how many uploads S3 still holds, and what will abort them."""
    left = journal.left_here()
    if not left:
        return ""
    later = (
        "the controller aborts them once S3 answers again"
        if isinstance(journal, FileJournal)
        else "running the Backup again or deleting it aborts them"
    )
    return (
        f"; {len(left)} unfinished multipart upload(s) under {path} {LEFT_NOTE}: {later} (a bucket "
        "lifecycle rule with AbortIncompleteMultipartUpload is the safety net)"
    )


def abort_leftovers(backup: Backup, runtime: BackupRuntime, s3: S3Options | None = None) -> int:
    """Abort what this Backup's earlier runs left unfinished: the journal's records (of processes that
    are gone) and every unfinished upload under ``backupPath``; return how many were aborted. Raises a
    StorageError while S3 does not answer (the records stay for next time)."""
    path = backup.status.backup_path
    journal = journal_for(runtime, backup)
    if not path and not journal.pending():
        return 0
    if s3 is None:
        secrets = resolve_secrets(backup, runtime)
        s3 = settings.s3_options(backup.spec, secrets.access_key, secrets.secret_key)
    options = dataclasses.replace(settings.at_path(s3, path) if path else s3, journal=journal)
    storage = remote.open_backup_storage(options)
    try:
        aborted, left = abort_recorded(storage, journal)  # type: ignore[arg-type]
        if left:
            raise StorageError(
                f"{left} unfinished multipart upload(s) noted for this Backup could not be aborted: "
                f"S3 at {getattr(storage, 'endpoint', '?')} refused or did not answer (see the log)"
            )
        if path:
            abort = getattr(storage, "abort_uploads", None)
            aborted += int(abort()) if callable(abort) else 0
    finally:
        remote.close_storage(storage)
    return aborted


def settle_note(backup: Backup) -> bool:
    """After a later pass aborted them: the ``Failed`` message no longer says uploads remain."""
    failed = backup.status.condition(Phase.FAILED)
    message = failed.message if failed is not None else None
    if failed is None or not message or LEFT_NOTE not in message:
        return False
    start = message.rfind("; ", 0, message.index(LEFT_NOTE))  # the note is the message's last part
    failed.message = message[: max(start, 0)] + ABORTED_LATER
    return True


__all__ = ["abort_leftovers", "journal_for", "left_note", "settle_note"]
