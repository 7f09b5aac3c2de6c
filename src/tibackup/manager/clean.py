"""What happens to a Backup's data when the Backup is deleted, per ``spec.cleanPolicy``.

* ``Retain`` (the default): the files stay in S3.
* ``Delete``: every object under ``backupPath`` goes, and unfinished multipart uploads there are aborted.
* ``OnFailure``: deleted only when the backup did not complete (Failed, interrupted, never finished);
  a Complete backup's files stay.

A Backup that never got a ``backupPath``, or whose files are already gone, cleans at once without
error. Whatever the policy, a claim its run left unfinished (``claimPath``: stopped between claiming a
folder and ``Running``) is released: claim files hold no data, and a folder no Backup knows about
would stay forever (``claim.release_pending`` touches nothing another Backup owns). The staging folder of a staged backup is emptied in every case (it is scratch space, not data).
Errors are ``TibackupError`` with a message saying what to do; the runtime sets ``CleanFailed``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tibackup.errors import StorageError
from tibackup.manager import remote, settings, uploads
from tibackup.manager.claim import release_pending
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.secrets import resolve_secrets
from tibackup.manager.staged import Staging
from tibackup.resources import Backup, Phase

log = logging.getLogger("tibackup.manager")


def completed(backup: Backup) -> bool:
    """Whether the backup finished successfully, also once deletion moved its phase to Clean."""
    status = backup.status
    if status.phase == Phase.COMPLETE:
        return True
    if status.phase in (Phase.CLEAN, Phase.CLEAN_FAILED):
        complete, failed = status.condition(Phase.COMPLETE), status.condition(Phase.FAILED)
        if complete is None or complete.status != "True":
            return False
        if failed is None or failed.status != "True":
            return True
        # Both set (failed once, completed on a later run, or the reverse): the later one counts.
        never = datetime.min.replace(tzinfo=UTC)
        return (complete.last_transition_time or never) >= (failed.last_transition_time or never)
    return False


def should_delete(backup: Backup) -> bool:
    policy = backup.spec.clean_policy
    if policy == "Delete":
        return True
    if policy == "OnFailure":
        return not completed(backup)
    return False


def should_clean(backup: Backup) -> bool:
    """Whether deleting the Backup touches S3: its data goes, or a run that did not complete may have
    left unfinished multipart uploads under its backupPath (aborted whatever the cleanPolicy)."""
    if backup.status.claim_path and backup.status.claim_path != backup.status.backup_path:
        return True
    return bool(backup.status.backup_path) and (should_delete(backup) or not completed(backup))


def clean_backup(backup: Backup, runtime: BackupRuntime) -> bool:
    """Apply the clean policy; return whether any data was deleted."""
    _clear_staging(backup, runtime)
    _release_claim(backup, runtime)
    path = backup.status.backup_path
    if path and not should_delete(backup):
        log.info(
            "backup %s: keeping %s (cleanPolicy %s)", backup.metadata.name, path, backup.spec.clean_policy
        )
    if not path or not should_clean(backup):
        return False
    if not should_delete(backup):
        _abort_uploads(backup, runtime)
        return False
    secrets = resolve_secrets(backup, runtime)
    options = settings.at_path(settings.s3_options(backup.spec, secrets.access_key, secrets.secret_key), path)
    storage = remote.open_backup_storage(options)
    try:
        deleted = storage.delete_prefix()
    except StorageError as exc:
        raise StorageError(
            f"could not delete the backup's files under {path}: {exc.message}; fix it and delete the Backup "
            "again, or set spec.cleanPolicy to Retain to keep the files",
            reason="CleanFailed",
        ) from exc
    finally:
        remote.close_storage(storage)
    log.info("backup %s: deleted %d object(s) under %s", backup.metadata.name, deleted, path)
    _abort_uploads(backup, runtime)  # the journal's records (delete_prefix aborted the rest)
    return deleted > 0


def _release_claim(backup: Backup, runtime: BackupRuntime) -> None:
    """The claim files a run stopped mid-claim left (``claimPath``): released before the Backup goes."""
    path = backup.status.claim_path
    if not path or path == backup.status.backup_path:
        return
    secrets = resolve_secrets(backup, runtime)
    try:
        released = release_pending(
            backup, settings.s3_options(backup.spec, secrets.access_key, secrets.secret_key)
        )
    except StorageError as exc:
        raise StorageError(
            f"could not release the claim this Backup's stopped run left in {path}: {exc.message}; delete the "
            "Backup again once S3 answers",
            reason="CleanFailed",
        ) from exc
    log.info("backup %s: released %d claim file(s) in %s", backup.metadata.name, released, path)
    backup.status = backup.status.model_copy(update={"claim_path": None})


def _abort_uploads(backup: Backup, runtime: BackupRuntime) -> None:
    """Abort the unfinished uploads a failed run left. Known leftovers (the journal's) must go before the
    Backup does (else CleanFailed, retried); a listing that cannot reach S3 is only a warning: a kept
    backup should not wait for S3 to be deletable, and the lifecycle rule remains."""
    known = bool(uploads.journal_for(runtime, backup).pending())
    try:
        aborted = uploads.abort_leftovers(backup, runtime)
    except StorageError as exc:
        message = f"could not abort the unfinished uploads under {backup.status.backup_path}: {exc.message}"
        if known:
            raise StorageError(
                f"{message}; delete the Backup again once S3 answers", reason="CleanFailed"
            ) from exc
        log.warning("backup %s: %s", backup.metadata.name, message)
        return
    if aborted:
        log.info("backup %s: aborted %d unfinished upload(s)", backup.metadata.name, aborted)


def _clear_staging(backup: Backup, runtime: BackupRuntime) -> None:
    try:
        folder = runtime.staging_dir(backup)
    except Exception:  # a runtime without local staging (e.g. the operator itself): nothing to clear
        return
    Staging(folder).clear()
