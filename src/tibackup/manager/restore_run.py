"""One Restore, start to finish. ``run_restore`` reads top to bottom as the steps, as ``run_backup`` does.

1. Validate: a spec that can never work (no ``spec.to.host``/``secretName``, no backup location, a bad
   ``s3.options`` flag or table-filter rule) → ``Invalid``, with the field in the message. Never retried.
2. Locate the backup: ``spec.s3.path`` (a folder or TiDB Operator's ``.tgz``), else the folder
   ``spec.s3.bucket``/``prefix``, or ``spec.tibackup.fromBackup``: the ``backupPath`` of that Complete
   Backup, read with its ``spec.s3`` unless the Restore gives one.
3. Secrets: the password (``spec.to.secretName``), S3 keys (``spec.s3.secretName``), TLS files
   (``spec.to.tlsClientSecretName``) — the same code as a Backup's (``secrets.py``).
4. Preflight: log in (a refused login names the Secret).
5. ``Running``, then ``tibackup load``'s engine (``load.run_load``): the folder must hold ``metadata``,
   every file is checked against ``tibackup-manifest.json`` as it streams and each table's rows at the end
   (reason ``VerifyFailed``), target tables that hold rows are refused before anything is written
   (``TargetNotEmpty``, naming them) unless ``spec.tibackup.onDuplicate`` says otherwise. Progress is
   checkpointed in the target in the same transaction as the rows, so running the Restore again after a
   crash resumes (annotation ``tibackup.pingcap.com/rerun``).
6. ``Complete`` with ``commitTs`` (the backup's ``Pos:``), ``backupSize`` (bytes loaded), ``restoredRows``
   and times; or ``Failed`` with a CamelCase reason and a one-line message. Never retried automatically.

An interruption is recorded as ``Failed``/``Interrupted`` and re-raised; a process killed outright leaves
``Running``, which the controller turns into ``Failed``/``Interrupted``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from tibackup.dump.config import Connection, TLSFiles
from tibackup.dump.metadata import METADATA_NAME
from tibackup.dump.progress import Progress
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import Interrupted, InvalidSpecError, TibackupError, UsageError
from tibackup.load.config import RESTORE_NAMES, LoadConfig, OnDuplicate
from tibackup.load.loader import run_load
from tibackup.load.source import FolderSource, open_source
from tibackup.manager import settings
from tibackup.manager.progress import ProgressLog, describe
from tibackup.manager.report import Reporter
from tibackup.manager.run import PROGRESS_INTERVAL, _login, utc_now
from tibackup.manager.runtime import RestoreRuntime
from tibackup.manager.secrets import resolve_access_secrets, tls_files
from tibackup.manager.verify import commit_ts
from tibackup.resources import Backup, BackupSpec, Phase, Restore, S3StorageProvider, validate_backup_spec
from tibackup.resources.validation import validate_meta
from tibackup.storage.options import parse_s3_url
from tibackup.units import human_size

log = logging.getLogger("tibackup.manager")


def run_restore(
    restore: Restore, runtime: RestoreRuntime, *, now: Callable[[], datetime] = utc_now
) -> Restore:
    """Run one Restore through validation, the backup's location, Secrets, preflight, load, Complete/Failed."""
    restore = restore.model_copy(deep=True)
    report = Reporter(restore, runtime, now)

    # 1. Validate: never retried, so nothing else is attempted.
    try:
        validate(restore)
    except InvalidSpecError as exc:
        return report.invalid("InvalidSpec", exc.message)

    try:
        # 2. Where the backup is.
        s3, source = locate(restore, _from_backup(restore, runtime))
        # 3. Secrets, masked in every message from here on.
        spec = restore.spec
        assert spec.to is not None
        namespace = restore.metadata.namespace or "default"
        report.secrets = secrets = resolve_access_secrets(
            runtime, namespace, spec.to, s3.secret_name, "spec.to"
        )
        with tls_files(secrets) as tls:
            config = load_config(restore, source, secrets.password, tls)
            config = LoadConfig(
                **{
                    **config.__dict__,
                    "s3": settings.storage_options(s3, secrets.access_key, secrets.secret_key),
                }
            )
            return _run(restore, report, config, spec.to.secret_name)
    except (KeyboardInterrupt, SystemExit, Interrupted) as exc:
        # Not the load's "run the same command again": applying a Failed Restore again does not run it.
        name, namespace = restore.metadata.name, restore.metadata.namespace or "default"
        message = (
            "the restore was interrupted before it finished; what it loaded is checkpointed in the target: "
            f"run it again to resume (tibackup rerun rt {name} -n {namespace}, or on Kubernetes the "
            "annotation tibackup.pingcap.com/rerun)"
        )
        report.failed("Interrupted", message)
        if isinstance(exc, SystemExit):
            raise
        raise Interrupted(message) from None
    except TibackupError as exc:
        return report.failed(exc.reason, exc.message)
    except Exception as exc:  # a bug in tibackup: still a clear status, the traceback only at debug
        log.debug("restore %s failed with an internal error", report.who, exc_info=True)
        return report.failed("InternalError", f"internal error: {type(exc).__name__}: {exc}")


def validate(restore: Restore) -> None:
    """Every check that needs no Secret and no server; raises InvalidSpecError naming the field."""
    validate_meta(restore.metadata)
    spec = restore.spec
    if spec.s3 is None and not spec.tibackup.from_backup:
        raise InvalidSpecError(
            "spec.s3", "required; say where the backup is (or set spec.tibackup.fromBackup)"
        )
    if spec.s3 is not None and not spec.tibackup.from_backup and not spec.s3.path and not spec.s3.bucket:
        raise InvalidSpecError(
            "spec.s3.path", "required; the backup's folder, e.g. s3://bucket/prefix/backup-…/"
        )
    if spec.br is not None:  # upstream's BR restore (physical, TiKV-level): tibackup cannot run one
        raise InvalidSpecError(
            "spec.br",
            "BR restores are not supported by tibackup, which loads logical (Dumpling-layout) backups: "
            "remove it to load a tibackup or Dumpling backup, or restore a BR backup with TiDB Operator",
        )
    if spec.use_kms:
        raise InvalidSpecError("spec.useKMS", "decrypting Secrets with KMS is not supported by tibackup; remove it")
    _check_as_backup(restore, _placeholder_s3(spec.s3))
    table_filter(restore)


def locate(restore: Restore, backup: Backup | None) -> tuple[S3StorageProvider, str]:
    """The S3 settings (bucket and prefix of the backup) and the source URL ``run_load`` reads."""
    spec = restore.spec
    if backup is not None:
        if backup.status.phase != Phase.COMPLETE or not backup.status.backup_path:
            raise TibackupError(
                f"Backup '{backup.metadata.name}' (spec.tibackup.fromBackup) is {backup.status.phase or 'not run yet'}, "
                "not Complete: restore a Complete Backup",
                reason="BackupNotComplete",
            )
        block: S3StorageProvider | None = spec.s3 or backup.spec.s3
        path = backup.status.backup_path
    else:
        block = spec.s3
        assert block is not None
        if spec.s3 and spec.s3.path:
            path = spec.s3.path if spec.s3.path.startswith("s3://") else "s3://" + spec.s3.path.lstrip("/")
        else:
            path = "s3://" + "/".join(
                p.strip("/") for p in (block.bucket or "", block.prefix or "") if p.strip("/")
            )
    assert block is not None
    folder = path.rpartition("/")[0] if path.endswith((".tgz", ".tar.gz")) else path
    try:
        bucket, prefix = parse_s3_url(folder)
    except TibackupError as exc:
        raise InvalidSpecError("spec.s3.path", exc.message) from None
    located = S3StorageProvider.model_validate(
        {**block.model_dump(exclude={"path"}, exclude_none=True), "bucket": bucket, "prefix": prefix}
    )
    source = path if folder != path else f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"
    return located, source


def load_config(restore: Restore, source: str, password: str, tls: TLSFiles | None = None) -> LoadConfig:
    spec = restore.spec
    assert spec.to is not None and spec.to.host
    connection = Connection(
        host=spec.to.host, port=spec.to.port, user=spec.to.user, password=password, tls=tls or TLSFiles()
    )
    return LoadConfig(
        connection=connection,
        source=source,
        table_filter=table_filter(restore),
        threads=spec.tibackup.threads,
        on_duplicate=OnDuplicate(spec.tibackup.on_duplicate),
        progress=False,
        names=RESTORE_NAMES,
    )


def table_filter(restore: Restore) -> TableFilter | None:
    rules = restore.spec.table_filter
    if not rules:
        return None
    try:
        return TableFilter.parse(rules)
    except UsageError as exc:
        raise InvalidSpecError("spec.tableFilter", exc.message) from None


def _placeholder_s3(block: S3StorageProvider | None) -> S3StorageProvider | None:
    """The s3 block as a Backup's checks see it (the bucket may only be known from path or fromBackup)."""
    if block is None:
        return None
    return S3StorageProvider.model_validate(
        {**block.model_dump(exclude={"path"}, exclude_none=True), "bucket": block.bucket or "placeholder"}
    )


def _check_as_backup(restore: Restore, s3: S3StorageProvider | None) -> None:
    """The checks of a Backup's ``spec.from``/``spec.s3`` (one set of rules), named as a Restore's fields."""
    spec = restore.spec
    placeholder = S3StorageProvider(provider="other", bucket="placeholder", endpoint="http://placeholder")
    view = BackupSpec.model_validate(
        {
            "from": spec.to.model_dump(exclude_none=True) if spec.to else None,
            "s3": (s3 or placeholder).model_dump(exclude_none=True),
            "storageSize": spec.storage_size,
        }
    )
    try:
        validate_backup_spec(view)
    except InvalidSpecError as exc:
        message = (
            exc.message.split(": ", 1)[-1]
            .replace("spec.from", "spec.to")
            .replace("database", "database to restore into")
        )
        raise InvalidSpecError(exc.field.replace("spec.from", "spec.to"), message) from None


def _from_backup(restore: Restore, runtime: RestoreRuntime) -> Backup | None:
    name = restore.spec.tibackup.from_backup
    if not name:
        return None
    namespace = restore.metadata.namespace or "default"
    backup = runtime.get_backup(namespace, name)
    if backup is None:
        raise TibackupError(
            f"Backup '{name}' (spec.tibackup.fromBackup) not found in namespace '{namespace}': name an "
            "existing Backup, or give spec.s3.path",
            reason="BackupNotFound",
        )
    return backup


def _run(restore: Restore, report: Reporter[Restore], config: LoadConfig, secret_name: str | None) -> Restore:
    conn = config.connection
    # 4. Preflight: the database account.
    with _login(conn, secret_name, "spec.to") as db:
        server = db.server_info()
    report.info(
        "PreflightPassed",
        f"{server.type.value} {server.version} at {conn.host}:{conn.port} as '{conn.user}' is ready",
    )

    # 5. Running: the load (it verifies every file and the row counts as it goes).
    report.running(config.source, f"restoring {config.source} into {conn.host}:{conn.port}")
    source = open_source(config.source, config.s3)
    progress = Progress()
    with ProgressLog(progress, "loaded", interval=PROGRESS_INTERVAL):
        result = run_load(config, source, progress)
    position = commit_ts(source.read(METADATA_NAME)) if isinstance(source, FolderSource) else ""
    report.info(
        "Loaded", describe(progress, "loaded") + (" (resumed from its checkpoint)" if result.resumed else "")
    )

    # 6. Complete.
    report.update(report.backup.status.model_copy(update={"restored_rows": result.rows}), save=False)
    if result.already_loaded:  # the same backup, filter and onDuplicate, finished into this database
        message = (
            f"already restored: an earlier load of {config.source} with the same tableFilter and onDuplicate "
            f"finished into {conn.host}:{conn.port} ({result.rows} rows) and its tables are there; nothing "
            "was loaded (to load it again, drop its tables first)"
        )
    else:
        message = (
            f"restored {result.tables} tables, {result.views} views, {result.rows} rows "
            f"({human_size(result.bytes)}) from {config.source}"
        )
        message += f" at position {position}" if position else ""
    return report.complete(result.bytes, position, message)


__all__ = ["load_config", "locate", "run_restore", "validate"]
