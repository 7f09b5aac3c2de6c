"""Backup storage: one protocol (``Storage``), a local folder and an S3 prefix behind it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tibackup.storage.base import ObjectInfo, ObjectNotFound, ObjectWriter, Storage
from tibackup.storage.local import LocalStorage

if TYPE_CHECKING:
    from tibackup.storage.multipart import part_size_for
    from tibackup.storage.options import S3Options, parse_s3_url
    from tibackup.storage.s3 import S3Storage

_LAZY = {  # a local dump loads none of them (boto3 alone takes ~0.1 s; the S3 options ~1 ms)
    "S3Storage": "tibackup.storage.s3",
    "S3Options": "tibackup.storage.options",
    "parse_s3_url": "tibackup.storage.options",
    "part_size_for": "tibackup.storage.multipart",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


def open_storage(url: str, s3: S3Options | None = None) -> Storage:
    """``s3://bucket/prefix`` → S3Storage (bucket and prefix from the URL win); else a local folder."""
    if url.startswith("s3://"):
        import dataclasses

        from tibackup.storage.options import S3Options, parse_s3_url
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
