"""Read: the client read mode — a chunk's rows fetched and encoded in C, read whole or by two workers.

``client_batches`` runs one chunk's (or half chunk's) SELECT through the C reader and yields its rows
a batch at a time. ``SharedChunk`` lets two workers read one chunk at once, each one half of its key
range: the dump's last chunks are read that way, so the worker that would wait for the other one's
last chunk helps with it instead (bench/trace.py showed one worker idle for most of a chunk at the end
of every table's dump). The very last chunk of a table is read in quarters where its key range allows
and they fit in memory: with halves, the worker that finished first still waited up to half a chunk
for the other one (24.7 ms of a 1M-row dump's 0.4 s, bench/trace.py). The file is byte for byte the
one a single read writes: the lower half writes as it reads, the upper half keeps its batches until
the lower half is done (at most half a chunk, HALF_KEPT_MAX; with quarters, the first part not yet
done writes and the later ones keep theirs: at most three quarters, also within HALF_KEPT_MAX), then
writes them and goes on directly, and the part that completes the chunk closes the file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from tibackup.dump import trace
from tibackup.dump.catalog import Kind, Table
from tibackup.dump.chunks import Chunk
from tibackup.dump.config import DumpConfig, FileType
from tibackup.dump.conn import DB, quote_ident
from tibackup.dump.render import RowFormat
from tibackup.dump.writer import ChunkWriter

READ_BATCH_BYTES = 1 << 20  # the C reader hands over at most about this much at a time
HALF_KEPT_MAX = 32 << 20  # a chunk is read in halves only if half of it (kept in memory) is below this

_KIND_CODES = {Kind.NUMBER: "n", Kind.STRING: "s", Kind.BYTES: "b", Kind.BIT: "b"}


class Stop(Exception):
    """Another worker failed; this one stops quietly."""


def client_batches(
    db: DB,
    chunk: Chunk,
    config: DumpConfig,
    fmt: RowFormat,
    room: Callable[[], int],
    stop: threading.Event,
    where: str,
    label: str,
) -> Iterator[tuple[bytes, int]]:
    """The rows of ``chunk`` (``where``: its range or one half of it) as encoded batches and their row
    counts. Each read stops at ``room()`` bytes, where the writer would end the statement (or file), so
    the writer takes the batch whole and need not search it for rows."""
    table = chunk.table
    columns = table.selected_columns
    separator = fmt.separator
    order = " ORDER BY " + ", ".join(quote_ident(c.name) for c in table.key) if table.key else ""
    names = ",".join(quote_ident(c.name) for c in columns) or "''"
    kinds = "".join(_KIND_CODES[c.kind] for c in columns).encode() if columns else b"s"
    source = f"({chunk.query}) AS tibackup_sql" if chunk.query else table.source
    sql = chunk.query or f"SELECT {names} FROM {source}{' WHERE ' + where if where else ''}{order}"
    csv = None
    if config.filetype is FileType.CSV:
        csv = (config.csv.separator, config.csv.delimiter, config.csv.null_value, separator)
    empty_row = b"()" if csv is None else b""  # a table whose every column is generated
    tracing, step = trace.ENABLED, "query"
    t = time.perf_counter() if tracing else 0.0
    with db.encoded_rows(sql, kinds, f"reading {table.schema}.{table.name}", csv) as reader:
        while (batch := reader.read(min(room() - len(separator) + 1, READ_BATCH_BYTES))) is not None:
            if tracing:
                trace.record(step, t, label)
                step, t = "fetch", time.perf_counter()
            if stop.is_set():
                raise Stop
            encoded, rows = batch
            if not columns:
                encoded = separator.join([empty_row] * rows)
            yield encoded, rows
            if tracing:
                trace.record("write", t, label)
                t = time.perf_counter()


def read_in_halves(table: Table, chunks: int, workers: int) -> bool:
    """Whether a table's last chunks are worth reading in halves: more than one worker, and half a chunk
    small enough to keep in memory (by the catalog's estimate; unknown sizes are not split)."""
    half = table.avg_row_length * table.est_rows / max(chunks, 1) / 2
    return workers > 1 and 0 < half <= HALF_KEPT_MAX


def last_in_quarters(table: Table, chunks: int) -> bool:
    """Whether three quarters of a chunk (the most its parts keep in memory) are small enough."""
    return table.avg_row_length * table.est_rows / max(chunks, 1) * 3 / 4 <= HALF_KEPT_MAX


class SharedChunk:
    """One chunk's writer, fed by the workers that read its parts (halves or quarters, see the module):
    the first part not yet done writes directly, the later ones keep their batches until it is."""

    def __init__(self, writer: ChunkWriter, separator: bytes, parts: int = 2) -> None:
        self.writer, self._separator = writer, separator
        self._lock = threading.Lock()
        self._current = 0  # the part that writes directly: every part before it is done and written
        self._done = [False] * parts
        self._kept: list[list[tuple[bytes, int]]] = [[] for _ in range(parts)]

    def room(self, part: int) -> int:
        if part != self._current:
            return READ_BATCH_BYTES  # kept for now: written (and cut into statements) later
        return self.writer.next_room()

    def add(self, part: int, blob: bytes, rows: int) -> None:
        with self._lock:
            if part == self._current:
                self.writer.add_blob(blob, self._separator, rows)
            else:
                self._kept[part].append((blob, rows))

    def finish(self, part: int) -> None:
        """One part has read all its rows; the one whose end completes the chunk closes the file(s)."""
        with self._lock:
            self._done[part] = True
            while self._current < len(self._done) and self._done[self._current]:
                self._current += 1
                if self._current < len(self._done):  # the next part's rows so far, then its own writes
                    for blob, rows in self._kept[self._current]:
                        self.writer.add_blob(blob, self._separator, rows)
                    self._kept[self._current].clear()
            last = self._current == len(self._done)
        if last:
            self.writer.close()

    def abort(self) -> None:
        """Drop the file being written (either half failed or the dump stopped); a no-op once closed."""
        with self._lock:
            for kept in self._kept:
                kept.clear()
            self.writer.abort()
