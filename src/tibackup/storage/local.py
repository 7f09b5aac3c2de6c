"""A folder on a local (or mounted) file system as backup storage, e.g. the staging volume."""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tibackup.errors import StorageError
from tibackup.storage.base import ObjectInfo, ObjectNotFound, ObjectWriter, check_name

TEMP_MARK = ".tmp-"  # in-progress files are '<name>.tmp-<random>', never listed as objects
PROBE_NAME = ".tibackup-write-probe"


def os_error(exc: OSError, path: Path | str, doing: str = "writing") -> StorageError:
    """One line naming the path, the cause and the fix."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return StorageError(f"no space left on device {doing} {path}: free space or use direct S3 output")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(
            f"permission denied {doing} {path}: fix the folder's owner or mode, or choose another output"
        )
    if exc.errno == errno.EROFS:
        return StorageError(f"read-only file system {doing} {path}: choose a writable output folder")
    if exc.errno == errno.ENOTDIR or exc.errno == errno.EEXIST:
        return StorageError(f"a file is in the way {doing} {path}: remove it or choose another output")
    reason = exc.strerror or exc.__class__.__name__
    return StorageError(f"cannot complete {doing} {path}: {reason}")


def local_etag(stat: os.stat_result) -> str:
    """A file's content identity without reading it: size and modification time (nanoseconds); a file
    rewritten by someone else gets a new mtime even at the same size."""
    return f"{stat.st_size}-{stat.st_mtime_ns}"


class LocalWriter(ObjectWriter):
    """Writes to a temporary sibling and renames it into place on ``close`` (atomic on POSIX)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(f"{path.name}{TEMP_MARK}{os.urandom(4).hex()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: BinaryIO | None = open(self.temp, "xb")  # noqa: SIM115 - closed in close/abort
        except OSError as exc:
            raise os_error(exc, path) from exc

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            raise StorageError(f"write to {self.path} after it was closed or aborted")
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise os_error(exc, self.path) from exc

    def close(self) -> str:
        if self._file is None:
            raise StorageError(f"close of {self.path} after it was closed or aborted")
        try:
            self._file.close()
            self._file = None
            etag = local_etag(os.stat(self.temp))  # the rename keeps size and mtime
            os.replace(self.temp, self.path)
        except OSError as exc:
            self.abort()
            raise os_error(exc, self.path) from exc
        return etag

    def close_if_absent(self) -> str | None:
        """Like ``close``, but only if no file of that name exists (a hard link is created atomically or
        not at all); None when one existed."""
        if self._file is None:
            raise StorageError(f"close of {self.path} after it was closed or aborted")
        try:
            self._file.close()
            self._file = None
            etag = local_etag(os.stat(self.temp))
            os.link(self.temp, self.path)
        except FileExistsError:
            return None
        except OSError as exc:
            raise os_error(exc, self.path) from exc
        finally:
            self.abort()  # removes the temporary name
        return etag

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # the data is thrown away; a failed flush changes nothing
                self._file.close()
            self._file = None
        self.temp.unlink(missing_ok=True)


class LocalStorage:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    @property
    def url(self) -> str:
        return str(self.root).rstrip("/") + "/"

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def create(self, name: str) -> ObjectWriter:
        return LocalWriter(self.path(name))

    def put(self, name: str, data: bytes) -> None:
        with self.create(name) as writer:
            writer.write(data)

    def put_if_absent(self, name: str, data: bytes) -> str | None:
        writer = LocalWriter(self.path(name))
        writer.write(data)
        return writer.close_if_absent()

    def read(self, name: str) -> bytes:
        with self.open_read(name) as file:
            return file.read()

    def open_read(self, name: str) -> BinaryIO:
        path = self.path(name)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"{path} does not exist") from None
        except OSError as exc:
            raise os_error(exc, path, "reading") from exc

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose name starts with ``prefix`` (a string prefix, as in S3), sorted by name."""
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        found: builtins.list[ObjectInfo] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            base = Path(dirpath).relative_to(self.root).as_posix()
            for filename in filenames:
                if TEMP_MARK in filename:
                    continue
                name = filename if base == "." else f"{base}/{filename}"
                if not name.startswith(prefix):
                    continue
                try:
                    stat = os.stat(os.path.join(dirpath, filename))
                except FileNotFoundError:
                    continue  # deleted while listing
                found.append(ObjectInfo(name, stat.st_size, local_etag(stat)))
        found.sort(key=lambda info: info.name)
        return iter(found)

    def delete(self, names: builtins.list[str]) -> None:
        for name in names:
            path = self.path(name)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise os_error(exc, path, "deleting") from exc
            self._prune_empty_dirs(path.parent)

    def delete_prefix(self, prefix: str = "") -> int:
        names = [info.name for info in self.list(prefix)]
        self.delete(names)
        return len(names)

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, self.root, "creating") from exc
        self.put(PROBE_NAME, b"")
        self.delete([PROBE_NAME])

    def _prune_empty_dirs(self, folder: Path) -> None:
        """S3 has no folders: remove the ones a deletion left empty, up to (not including) the root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty, or gone
            folder = folder.parent
