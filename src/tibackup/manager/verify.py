"""Proof that a backup is complete before it is called ``Complete`` (SPEC §4c).

``Recorder`` wraps the backup folder's storage and notes, for every object this run writes, its size
and the content identity the storage answered (S3: the ETag of the PutObject or CompleteMultipartUpload
response; nothing is hashed again). ``verify_complete`` then lists the folder once and requires:

* every object this run wrote is there, at its size, with the same ETag (an object overwritten by
  another writer, even at the same size, has another ETag);
* ``metadata`` (the completion marker) is among them;
* nothing else is there but the folder's claim (``claim.py``): a file this run did not write means
  another writer shares the folder.

``commitTs`` is the ``Pos:`` line of ``metadata``.
"""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from tibackup.dump.metadata import METADATA_NAME
from tibackup.errors import StorageError
from tibackup.storage.base import ObjectInfo, ObjectWriter, Storage

_POS = re.compile(r"^\s*Pos:\s*(\S*)\s*$", re.MULTILINE)


class IncompleteBackup(StorageError):
    reason = "VerifyFailed"


def commit_ts(metadata: bytes) -> str:
    """The ``Pos:`` of Dumpling's ``metadata`` (a binlog position, or the TSO on TiDB); '' if none."""
    match = _POS.search(metadata.decode("utf-8", "replace"))
    return match.group(1) if match else ""


class Recorder:
    """A storage that remembers name → (size, etag) of every object written through it."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.written: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.inner.url

    def record(self, name: str, size: int, etag: str) -> None:
        with self._lock:
            self.written[name] = (size, etag)

    def create(self, name: str) -> ObjectWriter:
        return _RecordingWriter(self.inner.create(name), name, self.record)

    def put(self, name: str, data: bytes) -> None:
        with self.create(name) as writer:
            writer.write(data)

    def put_if_absent(self, name: str, data: bytes) -> str | None:
        etag = self.inner.put_if_absent(name, data)
        if etag is not None:
            self.record(name, len(data), etag)
        return etag

    def read(self, name: str) -> bytes:
        return self.inner.read(name)

    def open_read(self, name: str) -> BinaryIO:
        return self.inner.open_read(name)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, names: builtins.list[str]) -> None:
        self.inner.delete(names)
        with self._lock:
            for name in names:
                self.written.pop(name, None)

    def delete_prefix(self, prefix: str = "") -> int:
        with self._lock:
            for name in [n for n in self.written if n.startswith(prefix)]:
                del self.written[name]
        return self.inner.delete_prefix(prefix)

    def check_writable(self) -> None:
        self.inner.check_writable()

    def close(self) -> None:
        close: Any = getattr(self.inner, "close", None)
        if callable(close):
            close()


class _RecordingWriter(ObjectWriter):
    def __init__(self, inner: ObjectWriter, name: str, record: Callable[[str, int, str], None]) -> None:
        self.inner, self.name, self._record = inner, name, record
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write(data)
        self.size += len(data) if not isinstance(data, memoryview) else data.nbytes

    def close(self) -> str:
        etag = self.inner.close()
        self._record(self.name, self.size, etag)
        return etag

    def abort(self) -> None:
        self.inner.abort()


def verify_complete(
    storage: Storage, written: dict[str, tuple[int, str]], is_claim: Callable[[str], bool] = lambda _: False
) -> int:
    """Check the folder holds exactly what this run wrote (``written``: name → (size, etag)), plus its
    claim; return the bytes stored there in all. Raise ``IncompleteBackup`` naming the first offenders."""
    listing = {info.name: info for info in storage.list()}
    missing = sorted(name for name in written if name not in listing)
    if METADATA_NAME not in written:
        missing.insert(0, f"{METADATA_NAME} (never written)")
    wrong_size = sorted(
        f"{name} ({listing[name].size} bytes, expected {size})"
        for name, (size, _) in written.items()
        if name in listing and listing[name].size != size
    )
    changed = sorted(
        name
        for name, (size, etag) in written.items()
        if name in listing and listing[name].size == size and etag and listing[name].etag
        and listing[name].etag != etag
    )  # fmt: skip
    foreign = sorted(name for name in listing if name not in written and not is_claim(name))
    problems = []
    if missing:
        problems.append(f"{len(missing)} file(s) missing, e.g. {', '.join(missing[:3])}")
    if wrong_size:
        problems.append(f"{len(wrong_size)} file(s) of the wrong size, e.g. {', '.join(wrong_size[:3])}")
    if changed:
        problems.append(
            f"{len(changed)} file(s) whose content differs from what was uploaded (overwritten by another "
            f"writer?), e.g. {', '.join(changed[:3])}"
        )
    if foreign:
        problems.append(
            f"{len(foreign)} file(s) this backup did not write (another writer in the same folder?), "
            f"e.g. {', '.join(foreign[:3])}"
        )
    if problems:
        raise IncompleteBackup(
            f"the backup at {storage.url} is not what was uploaded: {'; '.join(problems)}; run the backup again"
        )
    return sum(info.size for info in listing.values())
