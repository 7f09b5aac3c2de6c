"""The one place the manager opens S3 storage (so tests can put a wrapper around it)."""

from __future__ import annotations

from tibackup.storage import S3Options, S3Storage
from tibackup.storage.base import Storage


def open_backup_storage(options: S3Options) -> Storage:
    return S3Storage(options)


def close_storage(storage: Storage) -> None:
    """Stop an S3 storage's upload threads; other storages have none."""
    close = getattr(storage, "close", None)
    if callable(close):
        close()
