"""Backup storage: one protocol (``Storage``), a local folder and an S3 prefix behind it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tibackup.storage.base import ObjectInfo, ObjectNotFound, ObjectWriter, Storage
from tibackup.storage.local import LocalStorage
from tibackup.storage.multipart import part_size_for
from tibackup.storage.options import S3Options, parse_s3_url

if TYPE_CHECKING:
    from tibackup.storage.s3 import S3Storage


def __getattr__(name: str) -> Any:
    # boto3 takes ~0.1 s to import: a local dump or a `--help` should not pay for it.
    if name == "S3Storage":
        from tibackup.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(name)


def open_storage(url: str, s3: S3Options | None = None) -> Storage:
    """``s3://bucket/prefix`` → S3Storage (bucket and prefix from the URL win); else a local folder."""
    if url.startswith("s3://"):
        from tibackup.storage.s3 import S3Storage

        bucket, prefix = parse_s3_url(url)
        return S3Storage(dataclasses.replace(s3 or S3Options(), bucket=bucket, prefix=prefix))
    return LocalStorage(Path(url.removeprefix("file://")))


__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectWriter",
    "S3Options",
    "S3Storage",
    "Storage",
    "open_storage",
    "parse_s3_url",
    "part_size_for",
]
