"""Read → encode: one chunk's rows into its data file(s), in each read mode (see dumper.read_mode_for).

``dump_chunk`` reads a whole chunk (client: the C reader; bulk: GROUP_CONCAT batches; stream: rows
rendered by the server); ``dump_part`` reads one half or quarter of a chunk that workers share
(clientread.SharedChunk).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tibackup.dump import trace
from tibackup.dump.chunks import Chunk
from tibackup.dump.clientread import SharedChunk, client_batches
from tibackup.dump.clientread import Stop as _Stop
from tibackup.dump.config import DumpConfig, FileType
from tibackup.dump.conn import DB, quote_ident
from tibackup.dump.naming import DataFileNamer
from tibackup.dump.render import RowFormat
from tibackup.dump.writer import SQL_HEADER, ChunkWriter, FileRecord, Finisher
from tibackup.storage.base import Storage

log = logging.getLogger("tibackup.dump")

STREAM_BATCH_ROWS = 2000


def chunk_writer(
    chunk: Chunk,
    storage: Storage,
    config: DumpConfig,
    fmt: RowFormat,
    on_file: Callable[[FileRecord], None],
    on_progress: Callable[[int, int], None],
    finisher: Finisher | None = None,
    sql_header: bytes = SQL_HEADER,
) -> ChunkWriter:
    """The writer of one chunk's data file(s)."""
    table = chunk.table
    columns = table.selected_columns
    column_list = ""
    if config.complete_insert or table.has_generated or table.kept is not None:
        column_list = " (" + ",".join(quote_ident(c.name) for c in columns) + ")"
    prefix = f"INSERT INTO {quote_ident(table.name)}{column_list} VALUES\n".encode()
    header = b"" if config.csv.no_header or config.filetype is FileType.SQL else fmt.csv_header(columns)
    return ChunkWriter(
        storage,
        DataFileNamer(
            config.filename_template, table.schema, table.name, chunk.index,
            rows=config.rows > 0, file_size=config.file_size > 0,
        ),
        filetype=config.filetype, compression=config.compression, statement_prefix=prefix,
        csv_header=header, statement_size=config.statement_size, file_size=config.file_size,
        on_file=on_file, on_progress=on_progress, finisher=finisher, sql_header=sql_header,
        checksum=config.manifest_checksum,
    )  # fmt: skip


def dump_chunk(
    db: DB, chunk: Chunk, writer: ChunkWriter, config: DumpConfig, fmt: RowFormat, stop: threading.Event,
    *, client: bool = False,
) -> None:  # fmt: skip
    """One chunk read whole into ``writer`` (chunk_writer)."""
    label = f"{chunk.table.name}#{chunk.index}"
    try:
        if client:
            for encoded, rows in client_batches(
                db, chunk, config, fmt, writer.next_room, stop, chunk.where, label
            ):
                writer.add_blob(encoded, fmt.separator, rows)
        else:
            _read_rendered(db, chunk, writer, fmt, stop)
        with trace.span("close", label):
            writer.close()
    except BaseException:
        writer.abort()
        raise


def _read_rendered(db: DB, chunk: Chunk, writer: ChunkWriter, fmt: RowFormat, stop: threading.Event) -> None:
    """Rows rendered by the server (bulk: GROUP_CONCAT batches; stream: row by row). The client read
    builds none of this per chunk: its SELECT is client_batches' own."""
    table = chunk.table
    row_expr = fmt.row_expr(table.selected_columns)
    source = table.source
    if chunk.query:
        source = f"({chunk.query}) AS tibackup_sql"
    separator = fmt.separator
    doing = f"reading {table.schema}.{table.name}"
    order = " ORDER BY " + ", ".join(quote_ident(c.name) for c in table.key) if table.key else ""
    if chunk.batches:
        for condition in chunk.batches:
            if stop.is_set():
                raise _Stop
            where = f" WHERE {condition}" if condition else ""
            blob, warnings = db.blob(
                f"SELECT GROUP_CONCAT({row_expr} SEPARATOR {_sep_literal(separator)}) FROM {source}{where}",
                doing,
            )
            if warnings:  # truncated or otherwise odd: read this batch row by row instead
                log.debug("batch of %s had %d warnings; streaming it instead", source, warnings)
                _stream(db, writer, f"SELECT {row_expr} FROM {source}{where}{order}", separator, stop, doing)
            elif blob is not None:
                writer.add_blob(blob, separator)
    else:
        where = f" WHERE {chunk.where}" if chunk.where else ""
        _stream(db, writer, f"SELECT {row_expr} FROM {source}{where}{order}", separator, stop, doing)


def dump_part(
    db: DB, chunk: Chunk, shared: SharedChunk, part: int, parts: tuple[str, ...], config: DumpConfig,
    fmt: RowFormat, stop: threading.Event,
) -> None:  # fmt: skip
    """One part of a chunk read by several workers (clientread.SharedChunk): its halves or quarters."""
    suffix = (".lo", ".hi")[part] if len(parts) == 2 else f".q{part}"
    label = f"{chunk.table.name}#{chunk.index}{suffix}"
    # No abort here on a failure: another part may be writing; dump_tables aborts every shared chunk
    # once the workers have stopped.
    for encoded, rows in client_batches(
        db, chunk, config, fmt, lambda: shared.room(part), stop, parts[part], label
    ):
        shared.add(part, encoded, rows)
    with trace.span("close", label):
        shared.finish(part)


def _stream(
    db: DB, writer: ChunkWriter, sql: str, separator: bytes, stop: threading.Event, doing: str
) -> None:
    for rows in db.stream(sql, STREAM_BATCH_ROWS, doing):
        if stop.is_set():
            raise _Stop
        writer.add_rows([r[0] or b"" for r in rows], separator)


def _sep_literal(separator: bytes) -> str:
    return "X'" + separator.hex() + "'"
