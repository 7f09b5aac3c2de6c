"""What one Backup asks for, turned into the engine's settings: the data path, S3 options, the dump config.

Everything here is pure: a Backup (and resolved secret values) in, plain settings out. Errors a user
can fix are ``InvalidSpecError`` naming the field, so the Backup becomes ``Invalid``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum

from tibackup.control.naming import backup_path
from tibackup.dump.config import Connection, DumpConfig, TLSFiles
from tibackup.dump.options import parse_dumpling_args
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import InvalidSpecError, UsageError
from tibackup.record import evolve
from tibackup.resources import Backup, BackupSpec, RcloneS3Options, S3StorageProvider, parse_s3_options
from tibackup.resources.defaults import DEFAULT_TABLE_FILTER
from tibackup.storage.options import S3Options, parse_s3_url

MODE_ANNOTATION = "tibackup.pingcap.com/mode"
SKIP_PRIVILEGE_CHECK_ANNOTATION = "tibackup.pingcap.com/skip-privilege-check"


class DataPath(StrEnum):
    """How the dump reaches S3."""

    DIRECT = "direct"  # every file streams to S3 with multipart upload; no staging volume
    STAGED = "staged"  # dump to the staging volume, then upload (the reference's way)


def choose_mode(backup: Backup) -> DataPath:
    """The annotation ``tibackup.pingcap.com/mode: direct|staged`` wins; otherwise staged when the spec
    gives a staging volume (``storageSize``, as every seed example does), direct when it does not."""
    annotations = backup.metadata.annotations or {}
    wanted = annotations.get(MODE_ANNOTATION)
    if wanted is not None:
        try:
            return DataPath(wanted.strip().lower())
        except ValueError:
            raise InvalidSpecError(
                f"metadata.annotations[{MODE_ANNOTATION}]", f"{wanted!r} is not a mode; use direct or staged"
            ) from None
    return DataPath.STAGED if backup.spec.storage_size else DataPath.DIRECT


def skip_privilege_check(backup: Backup) -> bool:
    """An escape hatch for accounts whose privileges come from roles SHOW GRANTS does not expand."""
    value = (backup.metadata.annotations or {}).get(SKIP_PRIVILEGE_CHECK_ANNOTATION, "")
    return value.strip().lower() in ("true", "1", "yes")


def rclone_options(spec: BackupSpec) -> RcloneS3Options:
    return parse_s3_options(spec.s3.options if spec.s3 else None, "spec.s3.options")


def s3_options(spec: BackupSpec, access_key: str | None = None, secret_key: str | None = None) -> S3Options:
    """The spec's ``s3`` block plus its rclone ``options``, rooted at ``spec.s3.prefix``.

    Without keys (no ``s3.secretName``) boto3's chain finds credentials: environment, IRSA web identity,
    instance profile.
    """
    s3 = spec.s3
    if s3 is None or not s3.bucket:
        raise InvalidSpecError("spec.s3.bucket", "required; name the bucket that receives the backups")
    return storage_options(s3, access_key, secret_key)


def storage_options(
    s3: S3StorageProvider, access_key: str | None = None, secret_key: str | None = None
) -> S3Options:
    """An ``s3`` block (of a Backup or a Restore) with a bucket, plus its rclone ``options``."""
    assert s3.bucket
    options = S3Options(
        bucket=s3.bucket,
        prefix=(s3.prefix or "").strip("/"),
        endpoint=s3.endpoint,
        region=s3.region,
        provider=s3.provider,
        storage_class=s3.storage_class,
        acl=s3.acl,
        sse=s3.sse,
        force_path_style=s3.force_path_style,
        access_key=access_key,
        secret_key=secret_key,
    )
    overrides = parse_s3_options(s3.options, "spec.s3.options").storage_overrides()
    return dataclasses.replace(options, **overrides)  # type: ignore[arg-type]


def path_for(spec: BackupSpec, started: datetime, attempt: int = 1) -> str:
    """``s3://<bucket>[/<prefix>]/backup-<RFC 3339 UTC time>/``; ``…-<attempt>/`` from the second on."""
    assert spec.s3 is not None and spec.s3.bucket
    path = backup_path(spec.s3.bucket, spec.s3.prefix, started)
    return path if attempt == 1 else f"{path.rstrip('/')}-{attempt}/"


def folder_candidates(spec: BackupSpec, started: datetime) -> Iterator[str]:
    """The backup folders to claim in turn, relative to the bucket/prefix: ``backup-<RFC 3339 UTC>``,
    then ``backup-<…>-2``, ``-3``, … (the seed's name unless that second's folder is taken)."""
    for attempt in itertools.count(1):
        yield folder_in(spec, path_for(spec, started, attempt))


def root_path(spec: BackupSpec) -> str:
    """``s3://<bucket>[/<prefix>]/``: where the backup folders are."""
    assert spec.s3 is not None and spec.s3.bucket
    parts = (spec.s3.bucket.strip("/"), (spec.s3.prefix or "").strip("/"))
    return "s3://" + "/".join(p for p in parts if p) + "/"


def folder_in(spec: BackupSpec, path: str) -> str:
    """A backup path (``s3://bucket/prefix/folder/``) as the folder relative to the spec's bucket/prefix."""
    root = root_path(spec)
    folder = path.removeprefix(root).strip("/")
    if not path.startswith(root) or not folder or "/" in folder:
        raise InvalidSpecError("spec.s3", f"backup path {path} is not a folder of {root}")
    return folder


def at_path(options: S3Options, path: str) -> S3Options:
    """The same S3 settings rooted at ``path`` (an ``s3://bucket/prefix/`` URL)."""
    bucket, prefix = parse_s3_url(path)
    return dataclasses.replace(options, bucket=bucket, prefix=prefix)


def dump_config(spec: BackupSpec, output: str, password: str, tls: TLSFiles | None = None) -> DumpConfig:
    """``spec.dumpling.options`` through Dumpling's own parser, with the connection from ``spec.from``.

    The password goes in as a value (never a command-line argument); an unknown or bad flag is an
    ``InvalidSpecError`` naming ``spec.dumpling.options``.
    """
    source = spec.from_
    assert source is not None and source.host
    options = list(spec.dumpling.options)
    try:
        # The output given here only satisfies the parser: the manager hands run_dump its own storage.
        config = parse_dumpling_args([*options, "-o", output], {})
    except UsageError as exc:
        raise InvalidSpecError("spec.dumpling.options", exc.message) from None
    # Filter flags among the Dumpling options win (they are Dumpling's own); otherwise spec.tableFilter,
    # parsed whole so that a rule with a comma (a regex such as /a{1,3}/) stays one rule.
    if not any(_is_filter_flag(o) for o in options) and tuple(spec.table_filter) != DEFAULT_TABLE_FILTER:
        try:
            table_filter = TableFilter.parse(spec.table_filter, case_sensitive=config.case_sensitive)
        except UsageError as exc:
            raise InvalidSpecError("spec.tableFilter", exc.message) from None
        config = evolve(config, table_filter=table_filter)
    connection = Connection(
        host=source.host,
        port=source.port,
        user=source.user,
        password=password,
        tls=tls or TLSFiles(),
        read_timeout=config.connection.read_timeout,
    )
    # Progress goes to the log (manager.progress), never to a terminal line. --s3-no-check-bucket: the
    # account may not be allowed the probe's write and delete, so neither the preflight nor the dump
    # probes the bucket.
    return evolve(
        config, connection=connection, output=output, s3=None, progress=False,
        check_storage=not rclone_options(spec).no_check_bucket,
    )  # fmt: skip


def _is_filter_flag(option: str) -> bool:
    flag = option.strip().split("=", 1)[0]
    return flag in ("-f", "--filter", "-B", "--database", "-T", "--tables-list")
