"""One Backup, start to finish (SPEC §3). ``run_backup`` reads top to bottom as the steps.

1. Validate: a spec that can never work (including an unknown Dumpling flag, a bad ``s3.options`` flag or
   table-filter rule) → ``Invalid``, with the field in the message. Never retried.
2. Secrets: the DB password (``spec.from.secretName`` key ``password``), S3 keys (``spec.s3.secretName``
   keys ``access_key``/``secret_key``; without it boto3's environment/IAM/IRSA chain), TLS client files
   (``tlsClientSecretName``: ``ca.crt``, and ``tls.crt``+``tls.key``) in a private temporary folder.
3. Preflight: log in, check the privileges from ``SHOW GRANTS`` (each missing one named), check that
   the bucket accepts a probe object.
4. ``Prepare``: join the backups that hold TiDB's GC life time (raised when shorter than
   ``spec.tikvGCLifeTime``; recorded durably first, ``gc.py``); left in a ``finally`` whatever happens.
5. Claim a folder of this Backup's own, before the first byte (``claim.py``): ``backup-<RFC 3339 UTC>``
   under ``s3://<bucket>[/<prefix>]/``, or ``…-2``, ``-3``… when another backup holds that second's.
   ``Running`` with that ``backupPath``, then the dump:

   * DIRECT: every file streams to the backup path with multipart upload; no staging volume.
   * STAGED: dump to ``runtime.staging_dir(backup)``, upload every file (``metadata`` last), empty the
     staging folder on success, keep it on upload failure; a later run of the same Backup with the same
     spec uploads that finished dump instead of dumping again (to the same backupPath).

   The mode: annotation ``tibackup.pingcap.com/mode: direct|staged`` wins; otherwise staged when
   ``spec.storageSize`` is set (the seed's examples all set it), direct when it is not.
6. Verify that the folder holds exactly what this run uploaded, each object at its size and ETag
   (``verify.py``), then ``Complete`` with ``backupSize``,
   ``commitTs`` (``Pos:`` of ``metadata``) and times; or ``Failed`` with a CamelCase reason and a one-line
   message saying what to do. Never retried automatically.

``run_backup`` returns the Backup for every outcome except an interruption (KeyboardInterrupt, SystemExit
or ``Interrupted``): that is recorded as ``Failed``/``Interrupted`` — GC life time restored — and re-raised
so the process stops. A process killed outright leaves ``Prepare``/``Running``: see ``recover.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from tibackup.dump.config import Connection, DumpConfig
from tibackup.dump.conn import DB
from tibackup.dump.dumper import DumpResult, run_dump
from tibackup.dump.metadata import METADATA_NAME
from tibackup.dump.progress import Progress
from tibackup.errors import DatabaseError, Interrupted, InvalidSpecError, TibackupError
from tibackup.manager import claim, gc, gcnotes, phases, remote, settings
from tibackup.manager.preflight import check_privileges, check_storage
from tibackup.manager.progress import ProgressLog, describe
from tibackup.manager.report import Reporter
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.secrets import resolve_secrets, tls_files
from tibackup.manager.settings import DataPath
from tibackup.manager.staged import StagedDump, Staging, UploadFailed, upload
from tibackup.manager.verify import Recorder, commit_ts, verify_complete
from tibackup.resources import Backup, ConditionType, drop_condition, validate_backup
from tibackup.storage import S3Options
from tibackup.storage.base import Storage
from tibackup.storage.journal import UploadJournal
from tibackup.units import human_size

log = logging.getLogger("tibackup.manager")

PROGRESS_INTERVAL = 30.0  # seconds between progress lines in the log


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_backup(backup: Backup, runtime: BackupRuntime, *, now: Callable[[], datetime] = utc_now) -> Backup:
    """Run one Backup through validation, preflight, Prepare, Running and Complete/Failed."""
    backup = backup.model_copy(deep=True)
    report = Reporter(backup, runtime, now)

    # 1. Validate: never retried, so nothing else is attempted.
    try:
        mode = validate(backup)
    except InvalidSpecError as exc:
        return report.invalid("InvalidSpec", exc.message)

    # Every multipart upload is noted until completed or aborted: what S3 was not there to abort is
    # aborted later (``uploads.py``).
    from tibackup.manager import uploads

    journal = uploads.journal_for(runtime, backup)
    try:
        # 2. Secrets, resolved through the runtime, masked in every message from here on.
        report.secrets = secrets = resolve_secrets(backup, runtime)
        with tls_files(secrets) as tls:
            config = settings.dump_config(backup.spec, "staging", secrets.password, tls)
            s3 = settings.s3_options(backup.spec, secrets.access_key, secrets.secret_key)
            s3 = dataclasses.replace(s3, journal=journal)
            return _run(backup, report, mode, config, s3, now)
    except (KeyboardInterrupt, SystemExit, Interrupted):
        if phases.verified(report.backup.status):  # stopped after verification: a complete backup
            finish_verified(report, "the backup process was stopped after verifying it")
            raise
        report.failed(
            "Interrupted",
            "the backup was interrupted before it finished; its files are incomplete: run it again"
            + uploads.left_note(journal, report.backup.status.backup_path or ""),
        )
        raise
    except Exception as exc:
        if phases.verified(report.backup.status):  # only what follows verification failed
            return finish_verified(report, f"a step after verifying it failed: {_text(exc)}")
        return _failed(report, exc, journal)


def _failed(report: Reporter, exc: Exception, journal: UploadJournal) -> Backup:
    from tibackup.manager import uploads

    if isinstance(exc, TibackupError):
        return report.failed(
            exc.reason, exc.message + uploads.left_note(journal, report.backup.status.backup_path or "")
        )
    # a bug in tibackup: still a clear status, the traceback only at debug
    log.debug("backup %s failed with an internal error", report.who, exc_info=True)
    return report.failed("InternalError", f"internal error: {type(exc).__name__}: {exc}")


def _text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TibackupError) else f"{type(exc).__name__}: {exc}"


def finish_verified(report: Reporter, note: str) -> Backup:
    """``Complete`` for a run that stopped or failed after its folder was verified (``phases.verified``):
    the backup is whole; a GC life time not restored yet is left pending (the condition), for the
    controller or operator to restore."""
    status = drop_condition(report.backup.status, ConditionType.FAILED)  # the operator's "the Job died"
    verified = status.condition(ConditionType.VERIFIED)
    record = report.runtime.load_gc_record(report.backup)
    if record and status.condition(gcnotes.PENDING) is None:
        status = gcnotes.mark_pending(
            status, record, "the backup process stopped before restoring it", report.now()
        )
    message = f"{verified.message if verified else 'backed up'}; {note}"
    report.update(status, save=False)
    return report.complete(status.backup_size or 0, status.commit_ts or "", message)


def validate(backup: Backup) -> DataPath:
    """Every check that needs no Secret and no server; raises InvalidSpecError naming the field."""
    validate_backup(backup)
    settings.rclone_options(backup.spec)
    settings.dump_config(backup.spec, "staging", "")
    return settings.choose_mode(backup)


def _run(
    backup: Backup,
    report: Reporter,
    mode: DataPath,
    config: DumpConfig,
    s3: S3Options,
    now: Callable[[], datetime],
) -> Backup:
    spec, runtime = backup.spec, report.runtime
    conn = config.connection

    # 3. Preflight: the database account, its privileges, the bucket.
    with _login(conn, spec.from_.secret_name if spec.from_ else None) as db:
        server = db.server_info()
        manage_gc = gc.gc_applies(db, server)
        if not settings.skip_privilege_check(backup):
            check_privileges(db, server, gc_table=manage_gc)
    root = remote.open_backup_storage(s3)
    try:
        if not settings.rclone_options(spec).no_check_bucket:
            check_storage(root, spec.s3.secret_name if spec.s3 else None)
    finally:
        remote.close_storage(root)
    report.info(
        "PreflightPassed",
        f"{server.type.value} {server.version} at {conn.host}:{conn.port} as '{conn.user}' and "
        f"{root.url} are ready; data path: {mode.value}",
    )

    # 4. Prepare: the GC life time, restored in the finally whatever happens.
    report.prepare(
        f"raising tikv_gc_life_time to at least {spec.tikv_gc_life_time}" if manage_gc else "preparing"
    )
    try:
        if manage_gc:
            with connect(conn) as db:
                joined = gc.raise_gc_life_time(db, backup, runtime, spec.tikv_gc_life_time, now())
            gcnotes.tell(report, joined)

        # 5. Running: dump (and upload), then 6. verify.
        staging = Staging(runtime.staging_dir(backup)) if mode is DataPath.STAGED else None
        staged = staging.finished_dump(backup) if staging else None
        path = _claim_folder(report, s3, staged, now(), mode)
        storage = Recorder(remote.open_backup_storage(settings.at_path(s3, path)))
        try:
            if staging is None:
                _dump_direct(config, storage, report)
            else:
                _dump_staged(backup, config, storage, staging, staged is not None, s3, report)
            size = verify_complete(storage, storage.written, claim.is_claim)
            position = commit_ts(storage.read(METADATA_NAME))
            done = f"backed up {human_size(size)} to {path}" + (
                f" at position {position}" if position else ""
            )
            report.verified(size, position, done)  # durable: a stop from here on ends Complete
        finally:
            remote.close_storage(storage)
        if staging is not None:
            staging.clear()
    finally:
        if manage_gc:
            _restore_gc(conn, backup, report)

    return report.complete(size, position, done)


def connect(conn: Connection) -> DB:
    return DB(conn)


def _login(conn: Connection, secret_name: str | None, field: str = "spec.from") -> DB:
    """The first connection: a refused login names the Secret the password came from."""
    try:
        return connect(conn)
    except DatabaseError as exc:
        if exc.reason != "AccessDenied":
            raise
        raise DatabaseError(
            f"access denied for user '{conn.user}' at {conn.host}:{conn.port}: check {field}.user and the "
            f"password in Secret '{secret_name}' (key 'password')",
            reason="AccessDenied",
        ) from None


def _claim_folder(
    report: Reporter, s3: S3Options, staged: StagedDump | None, started: datetime, mode: DataPath
) -> str:
    """Claim a folder no other backup writes into (a kept staged dump keeps its own) and go ``Running``
    with it as ``backupPath``. Each candidate is recorded as ``claimPath`` before its gate is written;
    a run stopped before ``Running`` releases its claim here, or leaves the record for recovery,
    deletion or a re-run to release (``claim.release_pending``): no folder is left that no Backup knows."""
    backup, spec = report.backup, report.backup.spec
    if backup.status.claim_path:  # an earlier run of this Backup was stopped mid-claim
        claim.release_pending(backup, s3)
        report.update(backup.status.model_copy(update={"claim_path": None}), save=False)
    root_path = settings.root_path(spec)
    earlier = backup.status.backup_path
    if earlier and not staged and earlier.startswith(root_path):  # a re-run: its new folder replaces it
        _discard_earlier(report, s3, earlier)

    def record(folder: str) -> None:
        report.update(backup.status.model_copy(update={"claim_path": f"{root_path}{folder}/"}))

    document = claim.claim_document(backup, started)
    root = remote.open_backup_storage(s3)
    try:
        if staged:
            folder = settings.folder_in(spec, staged.backup_path)
            claim.reclaim(root, folder, document, record)
        else:
            folder = claim.claim_folder(
                root, settings.folder_candidates(spec, started), document, before_gate=record
            )
        path = f"{root_path}{folder}/"
        report.running(path, f"backing up to {path} ({mode.value})")  # clears claimPath
    except BaseException:
        release_claim(report, s3)
        raise
    finally:
        remote.close_storage(root)
    return path


def _discard_earlier(report: Reporter, s3: S3Options, path: str) -> None:
    """The folder of the failed run this re-run replaces: it is not a backup (the run said Failed), and
    once ``backupPath`` names the new folder no Backup would know it. Emptied first (a folder another
    Backup won is left alone, ``claim.discard``), with the unfinished uploads the failed run left."""
    from tibackup.manager import uploads

    parent, _, folder = path.rstrip("/").rpartition("/")
    root = remote.open_backup_storage(settings.at_path(s3, parent + "/"))
    try:
        deleted = claim.discard(root, folder, claim.claim_document(report.backup, report.now()))
    finally:
        remote.close_storage(root)
    aborted = uploads.abort_leftovers(report.backup, report.runtime, s3)
    if deleted or aborted:
        report.info("EarlierRunDiscarded", f"deleted the {deleted} file(s) the failed run left in {path}")


def release_claim(report: Reporter, s3: S3Options) -> None:
    """Stopped or failed between the claim and ``Running``: take the claim back now (a second stop
    signal is ignored, so this runs); if S3 does not answer, ``claimPath`` stays for later."""
    try:
        claim.release_pending(report.backup, s3)
    except Exception as exc:
        text = exc.message if isinstance(exc, TibackupError) else str(exc)
        report.warning(
            "ClaimNotReleased", f"the claim of {report.backup.status.claim_path} stays for now: {text}"
        )
        return
    report.update(report.backup.status.model_copy(update={"claim_path": None}), save=False)


def _dump_direct(config: DumpConfig, storage: Storage, report: Reporter) -> None:
    progress = Progress()
    with ProgressLog(progress, interval=PROGRESS_INTERVAL):
        result = run_dump(config, storage, progress)
    report.info("Dumped", describe(progress) + f" straight to {storage.url}")
    _dump_warnings(report, result)


def _dump_warnings(report: Reporter, result: DumpResult) -> None:
    for warning in result.warnings:  # only the table filter's, which matched nothing; the dump logged it
        report.warning("TableFilterMatchedNothing", warning, logged=True)


def _dump_staged(
    backup: Backup,
    config: DumpConfig,
    storage: Storage,
    staging: Staging,
    reuse: bool,
    s3: S3Options,
    report: Reporter,
) -> None:
    local = staging.storage()
    if reuse:
        report.info(
            "StagedDumpReused",
            f"a finished dump of this Backup is already staged in {local.url}: uploading it without dumping again",
        )
        _abort_leftovers(report, s3)  # into the same folder: what the failed upload left goes first
    else:
        path = backup.status.backup_path or ""
        staging.start(backup, path)
        progress = Progress()
        try:
            with ProgressLog(progress, interval=PROGRESS_INTERVAL):
                result = run_dump(config, local, progress)
        except BaseException:
            staging.clear()  # an unfinished dump can never be uploaded: free the volume
            raise
        report.info("Dumped", describe(progress) + f" to the staging folder {local.url}")
        _dump_warnings(report, result)
    progress = Progress()
    try:
        with ProgressLog(progress, "uploaded", interval=PROGRESS_INTERVAL):
            upload(local, storage, s3.concurrency, progress)
    except UploadFailed as exc:
        raise UploadFailed(
            f"uploading the staged dump to {storage.url} failed: {exc.message}; the dump is kept in "
            f"{local.url}: fix the cause and run the backup again to upload it without dumping again"
        ) from exc
    report.info("Uploaded", describe(progress, "uploaded") + f" to {storage.url}")


def _abort_leftovers(report: Reporter, s3: S3Options) -> None:
    """Before uploading again: what an earlier run of this Backup could not abort (S3 was down)."""
    from tibackup.manager import uploads

    try:
        aborted = uploads.abort_leftovers(report.backup, report.runtime, s3)
    except TibackupError as exc:
        report.warning("UploadsNotAborted", f"could not abort earlier unfinished uploads: {exc.message}")
        return
    if aborted:
        report.info("UploadsAborted", f"aborted {aborted} unfinished upload(s) left by an earlier run")


def _restore_gc(conn: Connection, backup: Backup, report: Reporter) -> None:
    """Restore in a ``finally``: a failure here is reported and leaves the restore pending (a condition
    the controller or operator clears when its retry succeeds); it never hides the backup's own outcome.
    The status is saved with the outcome that follows."""
    try:
        left = gc.restore_gc_life_time(lambda: connect(gc.restore_connection(conn)), backup, report.runtime)
    except Exception as exc:
        record = report.runtime.load_gc_record(backup) or {}
        message = report.clean(exc.message if isinstance(exc, TibackupError) else str(exc))
        report.warning(
            "GCLifeTimeNotRestored",
            f"could not restore tikv_gc_life_time to {record.get('value', 'its old value')}: {message}; "
            "it is retried until the database answers",
        )
        report.update(gcnotes.mark_pending(backup.status, record, message, report.now()), save=False)
        return
    report.update(gcnotes.clear_pending(backup.status), save=False)
    gcnotes.tell(report, left)


__all__ = ["finish_verified", "release_claim", "run_backup", "utc_now", "validate"]
