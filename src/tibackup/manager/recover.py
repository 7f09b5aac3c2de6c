"""A Backup left in ``Prepare`` or ``Running`` by a process that is gone (controller restart, killed Job).

Nothing will finish it, so ``recover_interrupted`` undoes what the run changed and says so:

1. restores TiDB's GC life time from the record the run saved before raising it (``gc.py``);
2. aborts the unfinished multipart uploads under its ``backupPath`` (S3 keeps those, and bills for
   them, until they are aborted);
3. marks it ``Failed`` with reason ``Interrupted`` and a message that says to run it again.

A staged dump that had finished is left on the staging volume, so running the Backup again uploads it
instead of dumping again. Failures of steps 1-2 are reported (Warning events, the message) and never
stop step 3; the GC record stays when the restore fails, so a later recovery can try again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from tibackup.dump.conn import DB
from tibackup.errors import TibackupError
from tibackup.manager import remote, settings
from tibackup.manager.gc import restore_gc_life_time
from tibackup.manager.report import Reporter
from tibackup.manager.run import utc_now
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.secrets import resolve_secrets, tls_files
from tibackup.resources import Backup, Phase

log = logging.getLogger("tibackup.manager")

IN_PROGRESS = frozenset({Phase.PREPARE, Phase.RUNNING})


def recover_interrupted(
    backup: Backup, runtime: BackupRuntime, *, now: Callable[[], datetime] = utc_now
) -> Backup:
    """Mark an orphaned in-progress Backup ``Failed``/``Interrupted`` after undoing its side effects."""
    backup = backup.model_copy(deep=True)
    report = Reporter(backup, runtime, now)
    problems: list[str] = []
    try:
        report.secrets = secrets = resolve_secrets(backup, runtime)
    except TibackupError as exc:
        secrets = None
        problems.append(exc.message)

    record = runtime.load_gc_record(backup)
    if record and secrets is not None:
        try:
            with tls_files(secrets) as tls:
                config = settings.dump_config(backup.spec, "staging", secrets.password, tls)
                value = restore_gc_life_time(lambda: DB(config.connection), backup, runtime)
            if value:
                report.info("GCLifeTimeRestored", f"tikv_gc_life_time restored to {value}")
        except TibackupError as exc:
            problems.append(f"tikv_gc_life_time was not restored to {record.get('value')}: {exc.message}")
            report.warning("GCLifeTimeNotRestored", problems[-1])
    elif record:
        problems.append(f"tikv_gc_life_time was not restored to {record.get('value')}")

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

    message = (
        "the backup process stopped before the backup finished (restart or killed Job); run the backup again"
    )
    if problems:
        message += "; also: " + "; ".join(problems)
    return report.failed("Interrupted", message)


def _abort_uploads(backup: Backup, path: str, access_key: str | None, secret_key: str | None) -> int:
    options = settings.at_path(settings.s3_options(backup.spec, access_key, secret_key), path)
    storage = remote.open_backup_storage(options)
    try:
        abort = getattr(storage, "abort_uploads", None)
        return int(abort()) if callable(abort) else 0
    finally:
        remote.close_storage(storage)
