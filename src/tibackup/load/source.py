"""Source: what the backup holds and how to read it — a folder (local or S3) or a TiDB Operator archive.

A folder is read through ``storage/`` (LocalStorage, S3Storage), every file opened on its own, so
several files stream at once. A ``.tgz`` (TiDB Operator's Dumpling backups: one gzip tar whose top
entry is the backup folder) is one stream read front to back, twice: first for the list of files and
the small ones (metadata, manifest, schemas), then for the data, in the archive's order; nothing of it
is written to disk.
"""

from __future__ import annotations

import logging
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Protocol

from tibackup.dump.config import Compression
from tibackup.dump.metadata import MANIFEST_NAME, METADATA_NAME
from tibackup.dump.naming import _FIELD, check_template
from tibackup.errors import StorageError, UsageError
from tibackup.load.read import CHUNK, CheckedReader, VerifyFailed, decompressed
from tibackup.storage import open_storage
from tibackup.storage.base import ObjectInfo, Storage
from tibackup.storage.options import S3Options

log = logging.getLogger("tibackup.load")

_SUFFIXES = {".gz": Compression.GZIP, ".zst": Compression.ZSTD, ".snappy": Compression.SNAPPY}


class FileKind(StrEnum):
    DATABASE = "database"  # {db}-schema-create.sql
    TABLE = "table"  # {db}.{table}-schema.sql (for a view: a stand-in table)
    VIEW = "view"  # {db}.{view}-schema-view.sql
    DATA = "data"  # {db}.{table}.{index}.sql|csv
    OTHER = "other"


@dataclass(frozen=True)
class BackupFile:
    name: str  # relative to the backup's root
    size: int  # bytes stored
    kind: FileKind
    db: str = ""
    table: str = ""
    compression: Compression = Compression.NONE
    csv: bool = False


def unescape_name(text: str) -> str:
    """Undo Dumpling's ``fn`` escape (``%XX``)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "%" and _is_hex(text[i + 1 : i + 3]):
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def template_pattern(template: str) -> re.Pattern[str]:
    """Dumpling's ``--output-filename-template`` read backwards: the regex of the names it makes."""
    template = check_template(template)
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        group = {"DB": "db", "Table": "table", "Index": "index"}[m.group(2)]
        out.append(r"(?P<index>\d+)" if group == "index" else f"(?P<{group}>.+?)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


DEFAULT_PATTERN = template_pattern("")


def classify(name: str, size: int, data_names: re.Pattern[str] = DEFAULT_PATTERN) -> BackupFile:
    """What a file of Dumpling's layout is, from its name alone (data files per ``data_names``)."""
    base = name.rsplit("/", 1)[-1]
    compression = Compression.NONE
    for suffix, codec in _SUFFIXES.items():
        if base.endswith(suffix):
            base, compression = base[: -len(suffix)], codec
    for ending, kind in (
        ("-schema-create.sql", FileKind.DATABASE),
        ("-schema-view.sql", FileKind.VIEW),
        ("-schema.sql", FileKind.TABLE),
    ):
        if base.endswith(ending):
            stem = base[: -len(ending)]
            if kind is FileKind.DATABASE:
                return BackupFile(name, size, kind, unescape_name(stem), "", compression)
            db, dot, table = stem.partition(".")
            if dot:
                return BackupFile(name, size, kind, unescape_name(db), unescape_name(table), compression)
    if base.endswith((".sql", ".csv")) and "-schema" not in base:
        m = data_names.fullmatch(base[:-4])
        if m and m.group("db") and m.group("table"):
            return BackupFile(
                name, size, FileKind.DATA, unescape_name(m.group("db")), unescape_name(m.group("table")),
                compression, csv=base.endswith(".csv"),
            )  # fmt: skip
        raise UsageError(
            f"cannot tell which table {name} holds: its name is not {{db}}.{{table}}.{{index}}; if the "
            "dump used --output-filename-template, pass the same template to load"
        )
    return BackupFile(name, size, FileKind.OTHER, compression=compression)


class Source(Protocol):
    @property
    def url(self) -> str: ...

    def listing(self) -> list[ObjectInfo]:
        """Every file of the backup, names relative to its root."""

    def read(self, name: str) -> bytes:
        """A small file, whole."""

    def streams(self, names: list[str]) -> Iterator[tuple[str, BinaryIO]]:
        """The named files as streams, one after another (each read to its end before the next)."""

    @property
    def parallel(self) -> bool:
        """Whether several files may be open at once (a folder), or only one stream (an archive)."""


class FolderSource:
    parallel = True

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @property
    def url(self) -> str:
        return self.storage.url

    def listing(self) -> list[ObjectInfo]:
        return [info for info in self.storage.list() if "/" not in info.name]

    def read(self, name: str) -> bytes:
        return self.storage.read(name)

    def streams(self, names: list[str]) -> Iterator[tuple[str, BinaryIO]]:
        for name in names:
            with self.storage.open_read(name) as stream:
                yield name, stream


def _small(name: str) -> bool:
    """metadata, the manifest and schema files: read on the first pass over an archive."""
    return name in (METADATA_NAME, MANIFEST_NAME) or "-schema" in name


class ArchiveSource:
    """A ``.tgz`` read as a stream: ``open_archive`` opens it from the start each time it is called."""

    parallel = False

    def __init__(self, url: str, open_archive: Callable[[], BinaryIO]) -> None:
        self._url, self._open = url, open_archive
        self._files: list[ObjectInfo] = []
        self._small: dict[str, bytes] = {}
        for name, member, tar in self._members():
            self._files.append(ObjectInfo(name, member.size))
            if _small(name):
                self._small[name] = _extract(tar, member).read()

    @property
    def url(self) -> str:
        return self._url

    def _members(self) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
        last = ""
        try:
            with self._open() as raw:
                unpacked = _Gunzipped(raw, self._url)
                with tarfile.open(fileobj=unpacked, mode="r|") as tar:  # type: ignore[call-overload]
                    for member in tar:
                        last = member.name
                        if not member.isfile():
                            continue
                        _top, slash, name = member.name.lstrip("./").partition("/")
                        if not slash or "/" in name:
                            continue  # the archive holds one folder of files; anything else is not ours
                        yield name, member, tar
                # tarfile ends quietly at a header it cannot read: only zero blocks may follow the
                # last entry (and reading to the end makes gzip check its CRC and length).
                if not unpacked.rest_is_padding():
                    raise VerifyFailed(
                        f"{self._url}: the archive is damaged after its entry {last!r} (what follows is not "
                        "a tar entry): restore from another backup"
                    )
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise StorageError(
                f"{self._url} is not a readable .tgz archive ({exc}): give a TiDB Operator backup archive "
                "or a backup folder"
            ) from None

    def listing(self) -> list[ObjectInfo]:
        return list(self._files)

    def read(self, name: str) -> bytes:
        return self._small[name]

    def streams(self, names: list[str]) -> Iterator[tuple[str, BinaryIO]]:
        wanted = set(names)
        for name, member, tar in self._members():
            if name in wanted:
                yield name, _extract(tar, member)


class _Gunzipped:
    """An archive's gzip stream decompressed for tarfile's stream mode (``r|``) with gzip's own checks:
    a cut stream, a bad CRC or length, bytes that do not decompress are VerifyFailed naming the archive
    (tarfile's own ``r|gz`` ends quietly on some of them, so a damaged archive looked shorter)."""

    def __init__(self, raw: BinaryIO, name: str) -> None:
        head = raw.read(2)
        if head != b"\x1f\x8b":
            raise tarfile.ReadError("not a gzip file")
        self._chunks = decompressed(CheckedReader(_Chained(head, raw), name), Compression.GZIP)  # type: ignore[arg-type]
        self._buf, self._pos = b"", 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            out = b"".join([self._buf[self._pos :], *self._chunks])
            self._buf, self._pos = b"", 0
            return out
        while len(self._buf) - self._pos < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf, self._pos = self._buf[self._pos :] + chunk, 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def rest_is_padding(self) -> bool:
        while data := self.read(CHUNK):
            if data.strip(b"\0"):
                return False
        return True


class _Chained:
    """``head`` (bytes already read), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head, self._raw = head, raw

    def read(self, n: int = -1) -> bytes:
        head, self._head = self._head, b""
        return head + self._raw.read(n - len(head) if n >= 0 else -1) if head else self._raw.read(n)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> BinaryIO:
    stream = tar.extractfile(member)
    if stream is None:  # pragma: no cover - regular files always have a stream
        raise StorageError(f"cannot read {member.name} from the archive")
    return stream  # type: ignore[return-value]


def open_source(source: str, s3: S3Options | None) -> Source:
    """A folder (local path, ``s3://bucket/prefix/``) or an archive (``….tgz``, local or in S3)."""
    if source.endswith((".tgz", ".tar.gz")):
        if source.startswith("s3://"):
            parent, _, name = source.rpartition("/")
            storage = open_storage(parent, s3)
            return ArchiveSource(storage.url + name, lambda: storage.open_read(name))
        path = Path(source)
        if not path.is_file():
            raise StorageError(f"the archive {source} does not exist: check -d")
        return ArchiveSource(str(path), lambda: open(path, "rb"))
    return FolderSource(open_storage(source, s3))
