"""Encode → write: turn rendered rows into Dumpling's files (the last stage of the pipeline).

A table chunk's rows arrive either as one blob per batch (rows joined by the format's separator, raw
newlines only between rows) or as a list of rendered rows. The writer frames them into statements of
about ``--statement-size`` bytes, starts a new file past ``--filesize``, compresses, and records each
file's stored size, row count and checksum (dump/checksum.py) for the manifest. A chunk with no rows writes no file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tibackup.dump import trace
from tibackup.dump.checksum import ManifestChecksum
from tibackup.dump.compress import make_compressor
from tibackup.dump.config import Compression, FileType
from tibackup.dump.conn import ServerType
from tibackup.dump.naming import DataFileNamer
from tibackup.record import record
from tibackup.storage.base import ObjectWriter, Storage

if TYPE_CHECKING:  # loaded only for background commits (S3): a local dump has no pool (start-up)
    from concurrent.futures import ThreadPoolExecutor

SQL_HEADER = b"/*!40101 SET NAMES binary*/;\n"
# Dumpling's first lines, so a file loads whatever order its tables come in: every schema file
# (writeMetaToFile) and, per server, every SQL data file (serverSpecialComments in export/ir_impl.go).
SCHEMA_HEADER = b"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n" + SQL_HEADER
MARIADB_DATA_HEADER = SQL_HEADER + b"SET FOREIGN_KEY_CHECKS=0;\n"


def data_file_header(server_type: ServerType) -> bytes:
    """The first lines of an SQL data file, as Dumpling writes them for this kind of server."""
    return MARIADB_DATA_HEADER if server_type is ServerType.MARIADB else SCHEMA_HEADER


@record
class FileRecord:
    """One written file: its name, stored size, rows and checksum (its manifest entry, in field order)."""

    name: str
    size: int  # bytes stored (after compression)
    rows: int
    checksum: ManifestChecksum  # the manifest names the digest's field after it: "xxh128": "…"
    digest: str
    schema: str = ""
    table: str = ""

    def entry(self) -> dict[str, object]:
        """The file's entry in the manifest."""
        return {
            "name": self.name, "size": self.size, "rows": self.rows, self.checksum.value: self.digest,
            "schema": self.schema, "table": self.table,
        }  # fmt: skip


class OutputFile:
    """One object in storage: raw bytes in, compressed bytes out, counted and hashed on the way."""

    def __init__(
        self, storage: Storage, name: str, compression: Compression,
        checksum: ManifestChecksum = ManifestChecksum.XXH128,
    ) -> None:  # fmt: skip
        self.name = name
        self.checksum = checksum
        self._writer: ObjectWriter = storage.create(name)
        self._compressor = make_compressor(compression)
        self._hash = checksum.new()
        self.raw_size = 0
        self.stored_size = 0

    def write(self, data: bytes) -> None:
        self.raw_size += len(data)
        out = self._compressor.compress(data)
        if out:
            self._emit(out)

    def _emit(self, data: bytes) -> None:
        self._hash.update(data)
        self.stored_size += len(data)
        self._writer.write(data)

    def close(self) -> str:
        tail = self._compressor.finish()
        if tail:
            self._emit(tail)
        self._writer.close()
        return self._hash.hexdigest()

    def abort(self) -> None:
        self._writer.abort()


class Finisher:
    """Closes output files on a few background threads, so a worker goes on reading while the file it
    finished is committed (on S3: its last part or its only PUT is uploaded). At most ``limit`` files
    wait at once, each holding its last buffer, so memory stays bounded. The first failure calls
    ``on_error`` (to stop the workers) and is raised by ``wait``.

    ``background=False`` closes each file on the caller's thread instead (same errors, same order of
    events): for a local folder, where closing is a close(2) and a rename, handing the file to another
    thread costs more than the close (a fifth of a 50-table dump's context switches)."""

    def __init__(
        self, limit: int, on_error: Callable[[], None] = lambda: None, *, background: bool = True
    ) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._executor: ThreadPoolExecutor | None = None
        if background:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(limit, thread_name_prefix="finish")
        self._on_error = on_error
        self._errors: list[BaseException] = []

    @property
    def errors(self) -> list[BaseException]:
        return list(self._errors)

    def close(self, out: OutputFile, done: Callable[[str], None]) -> None:
        """Close ``out`` in the background, then call ``done`` with its digest."""
        self._slots.acquire()
        if self._executor is None:
            self._close(out, done)
            return
        try:
            self._executor.submit(self._close, out, done)
        except BaseException:
            self._slots.release()
            out.abort()
            raise

    def _close(self, out: OutputFile, done: Callable[[str], None]) -> None:
        try:
            with trace.span("commit", out.name):
                digest = out.close()
            done(digest)
        except BaseException as exc:
            out.abort()  # a no-op when the writer already aborted itself
            self._errors.append(exc)
            self._on_error()
        finally:
            self._slots.release()

    def write_whole(
        self, storage: Storage, name: str, data: bytes, compression: Compression, schema: str, table: str,
        on_file: Callable[[FileRecord], None], checksum: ManifestChecksum = ManifestChecksum.XXH128,
    ) -> None:  # fmt: skip
        """``write_whole_file``, committed in the background."""
        out = OutputFile(storage, name, compression, checksum)
        try:
            out.write(data)
        except BaseException:
            out.abort()
            raise
        self.close(
            out, lambda digest: on_file(FileRecord(name, out.stored_size, 0, checksum, digest, schema, table))
        )

    def wait(self, *, raise_errors: bool = True) -> None:
        """Wait for every file handed over; raise the first failure."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if raise_errors and self._errors:
            raise self._errors[0]


def write_whole_file(
    storage: Storage, name: str, data: bytes, compression: Compression, schema: str = "", table: str = "",
    checksum: ManifestChecksum = ManifestChecksum.XXH128,
) -> FileRecord:  # fmt: skip
    out = OutputFile(storage, name, compression, checksum)
    try:
        out.write(data)
        digest = out.close()
    except BaseException:
        out.abort()
        raise
    return FileRecord(name, out.stored_size, 0, checksum, digest, schema, table)


class ChunkWriter:
    """The data files of one table chunk."""

    def __init__(
        self,
        storage: Storage,
        namer: DataFileNamer,
        *,
        filetype: FileType,
        compression: Compression,
        statement_prefix: bytes,
        csv_header: bytes,
        statement_size: int,
        file_size: int,
        on_file: Callable[[FileRecord], None],
        on_progress: Callable[[int, int], None] = lambda rows, size: None,
        finisher: Finisher | None = None,
        sql_header: bytes = SQL_HEADER,
        checksum: ManifestChecksum = ManifestChecksum.XXH128,
    ) -> None:
        self._storage, self._namer = storage, namer
        self._checksum = checksum
        self._sql_header = sql_header
        self._sql = filetype is FileType.SQL
        self._extension = filetype.value + compression.suffix
        self._compression = compression
        self._prefix = statement_prefix
        self._csv_header = csv_header
        self._statement_size = statement_size
        self._file_size = file_size
        self._on_file, self._on_progress = on_file, on_progress
        self._finisher = finisher
        self._file: OutputFile | None = None
        self._file_index = 0
        self._file_rows = 0
        self._statement_bytes = 0  # 0: no statement open
        self.rows = 0

    # -- framing -----------------------------------------------------------------------------------
    def _ensure_file(self) -> OutputFile:
        if self._file is None:
            name = self._namer.name(self._file_index, self._extension)
            self._file = OutputFile(self._storage, name, self._compression, self._checksum)
            self._file.write(self._sql_header if self._sql else self._csv_header)
            self._file_rows = 0
        return self._file

    def next_room(self) -> int:
        """What ``room()`` will be once the next rows' file and statement are open. A read that adds rows
        while its text is shorter than ``next_room() - len(separator) + 1`` bytes ends exactly where
        ``add_blob`` would end the statement (or file), so ``add_blob`` takes it whole."""
        raw = self._file.raw_size if self._file else len(self._sql_header if self._sql else self._csv_header)
        opening = 0
        room = 1 << 62
        if self._sql:
            opening = 2 if self._statement_bytes else len(self._prefix)  # ",\n" or "INSERT INTO … VALUES\n"
            room = self._statement_size - (self._statement_bytes or len(self._prefix))
        if self._file_size:
            room = min(room, self._file_size - raw - opening)
        return max(room, 1)

    def room(self) -> int:
        """Bytes this statement (SQL) or file (-F) may still take before it must end."""
        room = self._statement_size - self._statement_bytes if self._sql else 1 << 62
        if self._file_size and self._file is not None:
            room = min(room, self._file_size - self._file.raw_size)
        return max(room, 1)

    def _begin_rows(self) -> OutputFile:
        out = self._ensure_file()
        if self._sql:
            if self._statement_bytes == 0:
                out.write(self._prefix)
                self._statement_bytes = len(self._prefix)
            else:
                out.write(b",\n")
        return out

    def _end_statement_and_maybe_file(self) -> None:
        """Called after the row that filled a statement (SQL) or, for CSV, a file."""
        assert self._file is not None
        if self._sql:
            self._file.write(b";\n")
            self._statement_bytes = 0
        if self._file_size and self._file.raw_size >= self._file_size:
            self._finish_file()

    def _finish_file(self) -> None:
        if self._file is None:
            return
        if self._sql and self._statement_bytes:
            self._file.write(b";\n")
            self._statement_bytes = 0
        out, self._file = self._file, None
        rows, db, table = self._file_rows, self._namer.db, self._namer.table

        def done(digest: str) -> None:
            self._on_file(FileRecord(out.name, out.stored_size, rows, out.checksum, digest, db, table))

        if self._finisher is not None:
            self._finisher.close(out, done)
        else:
            done(out.close())
        self._file_index += 1

    def _account(self, rows: int, size: int) -> None:
        self.rows += rows
        self._file_rows += rows
        self._on_progress(rows, size)

    # -- input -------------------------------------------------------------------------------------
    def add_blob(self, blob: bytes, separator: bytes, rows: int = 0) -> None:
        """Rows joined by ``separator`` (rendered server-side or by the C reader); a raw b'\\n' only ends
        a separator. ``rows``, when known, saves counting them."""
        pos, end, sep_len = 0, len(blob), len(separator)
        while pos < end:
            out = self._begin_rows()
            cut = blob.find(b"\n", pos + self.room())
            if cut < 0:  # every remaining row fits in this statement / file
                piece = blob[pos:] if pos else blob
                out.write(piece if self._sql else piece + separator)
                self._statement_bytes += len(piece)
                self._account(rows if rows and not pos else piece.count(b"\n") + 1, len(piece))
                if self.room() <= 1:  # the batch's last row filled the statement or file
                    self._end_statement_and_maybe_file()
                return
            row_end = cut + 1 - sep_len  # the separator ends at the newline
            piece = blob[pos:row_end]
            out.write(piece if self._sql else piece + separator)
            self._statement_bytes += len(piece)
            self._account(piece.count(b"\n") + 1, len(piece))
            pos = cut + 1
            self._end_statement_and_maybe_file()

    def add_rows(self, rows: Sequence[bytes], separator: bytes) -> None:
        """Rows rendered one by one (the streaming path); values may hold raw newlines here.

        Rows are cut into runs that fit the current statement / file and each run is written as one
        joined block: a write per row would cost more than the rows themselves.
        """
        i, n = 0, len(rows)
        sep_len = 2 if self._sql else len(separator)
        while i < n:
            out = self._begin_rows()
            room, size, j = self.room(), 0, i
            while j < n and size < room:
                size += len(rows[j]) + sep_len
                j += 1
            run = rows[i:j]
            out.write(b",\n".join(run) if self._sql else separator.join(run) + separator)
            self._statement_bytes += size
            self._account(j - i, size)
            i = j
            if self.room() <= 1:
                self._end_statement_and_maybe_file()

    def close(self) -> None:
        self._finish_file()

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None
