"""The one storage protocol the engine writes through: a local folder or an S3 prefix.

A writer is all-or-nothing: the object appears only when ``close()`` succeeds, and ``abort()`` makes
sure nothing half-written stays behind (a multipart upload is aborted, a partial file removed).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO, Protocol

from tibackup.errors import StorageError
from tibackup.record import field, record


class ObjectNotFound(StorageError):
    """``read``/``open_read`` of an object that does not exist."""

    reason = "NotFound"


@record(eq=True)
class ObjectInfo:
    """One stored object as a listing returns it."""

    name: str  # relative to the storage root, '/'-separated
    size: int
    # Content identity as the storage reports it (S3: the ETag without quotes; local: size and mtime),
    # equal to what the writer's ``close`` returned as long as nobody else wrote the object since.
    etag: str = field(default="", compare=False)


def clean_etag(etag: str | None) -> str:
    """S3 sends ETags in quotes (``"abc…"``, ``"abc…-3"`` for multipart); compare them without."""
    return (etag or "").strip().strip('"')


class ObjectWriter(Protocol):
    """Implementations subclass this to inherit the ``with`` support: close on success, abort on error."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def close(self) -> str:
        """Finish the object; after this returns it exists in full. Return its content identity (the
        ``etag`` that listing the object shows while nobody else has written it since)."""

    def abort(self) -> None:
        """Discard everything written; safe to call after a failed write or close, and twice."""

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Storage(Protocol):
    @property
    def url(self) -> str:
        """Where the root is, for humans: ``s3://bucket/prefix/`` or ``/path/``."""

    def create(self, name: str) -> ObjectWriter: ...

    def put(self, name: str, data: bytes) -> None: ...

    def put_if_absent(self, name: str, data: bytes) -> str | None:
        """Create ``name`` only if no object of that name exists (S3: ``If-None-Match: *``); return its
        etag, or None when it already existed. A server that ignores the condition overwrites instead,
        so callers must stay safe without it (see ``manager/claim.py``)."""

    def read(self, name: str) -> bytes: ...

    def open_read(self, name: str) -> BinaryIO: ...

    def exists(self, name: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, names: builtins.list[str]) -> None: ...

    def delete_prefix(self, prefix: str = "") -> int:
        """Delete every object under ``prefix``; return how many were deleted."""

    def check_writable(self) -> None:
        """Fail with a StorageError naming the cause unless objects can be written here."""


def check_name(name: str) -> str:
    """An object name is relative and '/'-separated, without empty, '.' or '..' parts."""
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"invalid object name '{name}': names are relative paths without '..'")
    return name
