"""A Backup left in ``Prepare`` or ``Running`` by a process that is gone (controller restart, killed Job).

Nothing will finish it, so ``recover_interrupted`` undoes what the run changed and says so:

1. leaves the holders of TiDB's GC life time it joined (the record the run saved first; ``gc.py``):
   restored when no other backup holds it, kept at what the others need otherwise;
2. aborts the unfinished multipart uploads under its ``backupPath`` (S3 keeps those, and bills for
   them, until they are aborted), and releases the claim of a run stopped between claiming its folder
   and ``Running`` (``claimPath``; kept for deletion or a re-run when S3 does not answer);
3. marks it ``Failed`` with reason ``Interrupted`` and a message that says to run it again (and, when
   the embedded state directory is full, names it: ``control/interrupted.py``) — or ``Complete`` when
   the run had verified its folder (condition ``Verified``) before it was killed.

A staged dump that had finished is left on the staging volume, so running the Backup again uploads it
instead of dumping again. Failures of steps 1-2 are reported (Warning events, the message) and never
stop step 3; the GC record stays when the restore fails, and the Backup shows the condition
``GCLifeTimeRestorePending``.

``retry_gc_restore`` is the retry of a pending restore on a Backup that has finished (Complete or
Failed): the embedded controller calls it on its passes, the operator's recover Job on its timer, until
the value is back and the condition gone. It never changes the phase.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from tibackup.control.interrupted import StateSpace, interrupted_message
from tibackup.dump.conn import DB
from tibackup.errors import TibackupError
from tibackup.manager import gc, gcnotes, phases, remote, settings
from tibackup.manager.report import Reporter
from tibackup.manager.run import finish_verified, release_claim, utc_now
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.secrets import Secrets, resolve_secrets, tls_files
from tibackup.resources import FINISHED_PHASES, Backup, Phase

log = logging.getLogger("tibackup.manager")

IN_PROGRESS = frozenset({Phase.PREPARE, Phase.RUNNING})


def recover_interrupted(
    backup: Backup,
    runtime: BackupRuntime,
    *,
    now: Callable[[], datetime] = utc_now,
    state_space: StateSpace | None = None,
) -> Backup:
    """Mark an orphaned in-progress Backup ``Failed``/``Interrupted`` after undoing its side effects;
    ``state_space``: the embedded state directory's free space, named in the message when it is full."""
    backup = backup.model_copy(deep=True)
    report = Reporter(backup, runtime, now)
    problems: list[str] = []
    try:
        report.secrets = secrets = resolve_secrets(backup, runtime)
    except TibackupError as exc:
        secrets = None
        problems.append(exc.message)

    problem = _restore_gc(report, secrets)
    if problem:
        problems.append(problem)

    path = backup.status.backup_path
    if path and secrets is not None:
        try:
            aborted = _abort_uploads(backup, path, secrets.access_key, secrets.secret_key)
            if aborted:
                report.info("UploadsAborted", f"aborted {aborted} unfinished upload(s) under {path}")
        except TibackupError as exc:
            report.warning(
                "UploadsNotAborted", f"could not abort unfinished uploads under {path}: {exc.message}"
            )

    if backup.status.claim_path and secrets is not None:
        release_claim(report, settings.s3_options(backup.spec, secrets.access_key, secrets.secret_key))

    if phases.verified(backup.status):  # killed after its folder was verified: a complete backup
        return finish_verified(report, "the backup process stopped after verifying it")
    return report.failed(
        "Interrupted",
        interrupted_message(state_space, problems, backup.metadata.name, backup.metadata.namespace or ""),
    )


def retry_gc_restore(
    backup: Backup, runtime: BackupRuntime, *, now: Callable[[], datetime] = utc_now
) -> Backup:
    """Try again to restore the GC life time a finished Backup left raised; the phase stays as it is.

    Restored (or nothing recorded): the ``GCLifeTimeRestorePending`` condition goes. Not restored: the
    condition says the last error. The status is saved either way."""
    backup = backup.model_copy(deep=True)
    report = Reporter(backup, runtime, now)
    try:
        report.secrets = secrets = resolve_secrets(backup, runtime)
    except TibackupError as exc:
        record = runtime.load_gc_record(backup) or {}
        return report.update(gcnotes.mark_pending(backup.status, record, report.clean(exc.message), now()))
    _restore_gc(report, secrets)
    return report.update(backup.status)


def pending_gc_restore(backup: Backup, runtime: BackupRuntime) -> bool:
    """Whether a finished Backup still has a GC life time to restore (its record is kept)."""
    return backup.status.phase in FINISHED_PHASES and runtime.load_gc_record(backup) is not None


def _restore_gc(report: Reporter, secrets: Secrets | None) -> str | None:
    """Restore from the record, setting or clearing the pending condition (not saved); the problem, if any."""
    backup, runtime = report.backup, report.runtime
    record = runtime.load_gc_record(backup)
    if not record:
        report.update(gcnotes.clear_pending(backup.status), save=False)
        return None
    try:
        if secrets is None:
            raise TibackupError("the Backup's Secrets could not be read")
        with tls_files(secrets) as tls:
            config = settings.dump_config(backup.spec, "staging", secrets.password, tls)
            connection = gc.restore_connection(config.connection)
            left = gc.restore_gc_life_time(lambda: DB(connection), backup, runtime)
    except TibackupError as exc:
        error = report.clean(exc.message)
        problem = f"tikv_gc_life_time was not restored to {record.get('value')}: {error}"
        report.warning("GCLifeTimeNotRestored", problem)
        report.update(gcnotes.mark_pending(backup.status, record, error, report.now()), save=False)
        return problem
    report.update(gcnotes.clear_pending(backup.status), save=False)
    gcnotes.tell(report, left)
    return None


def _abort_uploads(backup: Backup, path: str, access_key: str | None, secret_key: str | None) -> int:
    options = settings.at_path(settings.s3_options(backup.spec, access_key, secret_key), path)
    storage = remote.open_backup_storage(options)
    try:
        abort = getattr(storage, "abort_uploads", None)
        return int(abort()) if callable(abort) else 0
    finally:
        remote.close_storage(storage)
