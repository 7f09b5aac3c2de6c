"""One dump, top to bottom: list → lock → plan → read → write → metadata.

``run_dump`` is the whole flow; read it first. Workers are threads, each with its own connection held
at the same point in time; the heavy lifting (fetching and encoding rows in _rowcodec.c, compressing,
hashing, uploading) runs in C with the GIL released. Nothing counts as a dump until ``metadata`` is
written, and it is written last, only after every file was committed.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime

from tibackup.dump import tidb, trace
from tibackup.dump.catalog import Catalog, Table, load_catalog
from tibackup.dump.chunks import Chunk, plan_chunks
from tibackup.dump.clientread import SharedChunk, last_in_quarters, read_in_halves
from tibackup.dump.clientread import Stop as _Stop
from tibackup.dump.config import Compression, DumpConfig
from tibackup.dump.conn import DB, HAVE_ROW_READER, ServerInfo, ServerType
from tibackup.dump.consistency import ConsistencyGuard, resolve
from tibackup.dump.metadata import (
    MANIFEST_NAME,
    METADATA_NAME,
    BinlogPosition,
    manifest_json,
    metadata_text,
    read_position,
)
from tibackup.dump.progress import Progress
from tibackup.dump.query import query_chunk
from tibackup.dump.readchunk import chunk_writer, dump_chunk, dump_part
from tibackup.dump.render import RowFormat
from tibackup.dump.schema import table_schema_files, write_database_schemas
from tibackup.dump.tablefilter import default_filter
from tibackup.dump.writer import (
    SQL_HEADER,
    FileRecord,
    Finisher,
    data_file_header,
    write_whole_file,
)
from tibackup.errors import Interrupted
from tibackup.record import evolve, field, record
from tibackup.storage import open_storage
from tibackup.storage.base import Storage
from tibackup.storage.local import LocalStorage

log = logging.getLogger("tibackup.dump")

FILES_COMMITTING = 4  # at most this many finished files are committed in the background at once


def read_mode_for(config: DumpConfig, fmt: RowFormat, on_tidb: bool) -> str:
    """client: plain SELECT, rows fetched and escaped in C (the default where it applies); stream: each
    row rendered by the server; bulk: batches of rows rendered by the server with GROUP_CONCAT (see
    bench/ for what each costs)."""
    client_ok = HAVE_ROW_READER and fmt.bulk_safe  # backslash escapes; CSV lines that end in a newline
    bulk_ok = fmt.bulk_safe and not on_tidb  # rows splittable at newlines; proven against MariaDB only
    mode = config.read_mode
    if mode == "auto":
        mode = "client" if client_ok else "bulk" if bulk_ok else "stream"
    if mode == "client" and not client_ok:
        mode = "stream"  # --escape-backslash=false, an odd CSV terminator or no compiled reader
    if mode == "bulk" and not bulk_ok:
        mode = "stream"
    return mode


@record
class DumpResult:
    """What a finished dump wrote: its files, the server and the consistent position."""

    output: str
    started: datetime
    finished: datetime
    server: ServerInfo
    consistency: str
    position: BinlogPosition | None
    files: list[FileRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # lines the dump logged at WARNING, for the caller

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def commit_ts(self) -> str:
        return self.position.pos if self.position else ""


def run_dump(
    config: DumpConfig, storage: Storage | None = None, progress: Progress | None = None
) -> DumpResult:
    storage = storage or open_storage(config.output, config.s3)
    if config.check_storage:
        storage.check_writable()
    progress = progress or Progress()
    with trace.span("connect"):
        main = DB(config.connection, config.params)
    workers: list[DB] = []
    guard: ConsistencyGuard | None = None
    try:
        server = main.server_info()
        mode = resolve(config.consistency, server)
        started = datetime.now()
        table_filter = config.table_filter or default_filter()
        with trace.span("catalog"):
            catalog = load_catalog(
                main, table_filter, include_views=not config.no_views,
                include_sequences=not config.no_sequences, partitions=config.partitions,
                column_filter=config.column_filter,
            )  # fmt: skip
        what = "the result of --sql" if config.sql else (
            f"{len(catalog.base_tables)} tables and {len(catalog.views)} views from {len(catalog.schemas)} databases"
        )  # fmt: skip
        log.info("dumping %s on %s %s to %s", what, server.type.value, server.version, storage.url)
        warnings = [w for w in (filter_matched_nothing(config, catalog),) if w]
        for warning in warnings:
            log.warning("%s", warning)

        # Lock, open every worker at the same point in time, note the position, unlock.
        guard = ConsistencyGuard(main, mode, server, config.snapshot)
        with trace.span("lock", f"{guard.mode.value} and {config.threads} sessions"):
            guard.begin(catalog.base_tables)
            for _ in range(config.threads):
                worker = DB(config.connection, config.params)
                workers.append(worker)
                prepare_session(worker, server, config)
                guard.prepare_worker(worker)
            position = read_position(main, server, guard.snapshot)
            guard.after_workers_ready()
        log.info("consistency %s; position %s", guard.mode.value, position or "not recorded")

        files: list[FileRecord] = []
        header, on_tidb = data_file_header(server.type), server.type is ServerType.TIDB
        if config.sql:  # Dumpling's dumpSQL: the query's result, no schema files
            chunks = [query_chunk(workers[0], config.sql)]
            files += dump_tables(
                workers, storage, catalog, config, progress, sql_header=header, chunks=chunks
            )
        else:
            if not config.no_schemas:
                files += write_database_schemas(
                    workers[0], storage, catalog.schemas, catalog.tables, config.compression,
                    dump_empty_database=config.dump_empty_database, checksum=config.manifest_checksum,
                )  # fmt: skip
            if not config.no_data:
                progress.total_rows = sum(t.est_rows for t in catalog.base_tables)
            files += dump_tables(
                workers, storage, catalog, config, progress, on_tidb=on_tidb, sql_header=header
            )
        guard.release()

        finished = datetime.now()
        with trace.span("manifest"):
            if config.manifest:
                manifest = manifest_json(
                    started=started, finished=finished, server=server, consistency=guard.mode.value,
                    position=position, files=files,
                )  # fmt: skip
                write_whole_file(storage, MANIFEST_NAME, manifest, Compression.NONE)
            write_whole_file(
                storage, METADATA_NAME, metadata_text(started, finished, position), Compression.NONE
            )
        return DumpResult(storage.url, started, finished, server, guard.mode.value, position, files, warnings)
    except KeyboardInterrupt:
        raise Interrupted(
            "the dump was interrupted; it is incomplete (no metadata file was written)"
        ) from None
    finally:
        if guard is not None:
            guard.release()
        for db in (*workers, main):
            db.close()
        trace.write()


def filter_matched_nothing(config: DumpConfig, catalog: Catalog) -> str | None:
    """A user's table filter (-f/-T/-B, a Backup's spec.tableFilter) that selects no table and no view: the
    dump completes, as Dumpling's does (an empty database is a legitimate backup), but says so, since a
    typo in the filter would otherwise give an empty backup reported complete."""
    chosen = config.table_filter
    if config.sql or chosen is None or catalog.tables:
        return None
    shown = ", ".join(chosen.rules) + (f" -B {','.join(chosen.databases)}" if chosen.databases else "")
    return (
        f"the table filter ({shown}) matched no table or view: the backup holds no data; "
        "check -f/-T/-B (a Backup's spec.tableFilter or its dumpling.options)"
    )


def prepare_session(db: DB, server: ServerInfo, config: DumpConfig) -> None:
    if server.type is ServerType.TIDB and config.tidb_mem_quota_query:
        tidb.set_mem_quota(db, config.tidb_mem_quota_query)
    # Bulk batches come back as one value; let it be as large as a packet may be.
    db.execute("SET SESSION group_concat_max_len = @@max_allowed_packet")


# -- tables: schemas, chunk plans and chunks, in parallel -------------------------------------------
Task = Callable[[DB], None]


# What a worker takes next: a planned table's chunks before the next table's plan, and every schema file
# last, where the small tasks fill the gaps at the end (queued in this order, they would all run before
# the first row is read: 26 ms of round trips before any data on 50 tables, bench/trace.py).
DATA, PLAN, SCHEMA = 0, 1, 2
_DONE = 3  # after every task: tells a worker to stop


class WorkerPool:
    """One thread per worker session, all taking tasks from one queue, the lowest rank first (in the
    order added within a rank); a task may queue more (a table's plan queues its chunks). The first
    failure stops everyone and is raised by ``run``."""

    def __init__(self, workers: list[DB]) -> None:
        self.workers = workers
        self.stop = threading.Event()
        self._tasks: queue.PriorityQueue[tuple[int, int, Task | None]] = queue.PriorityQueue()
        self._added = itertools.count()  # ties keep the order tasks were added (never compares tasks)
        self._errors: list[BaseException] = []

    def add(self, task: Task, rank: int = DATA) -> None:
        self._tasks.put((rank, next(self._added), task))

    def _work(self, db: DB) -> None:
        while (task := self._next()) is not None:
            try:
                if not self.stop.is_set():
                    task(db)
            except _Stop:
                pass
            except BaseException as exc:  # one failure stops everyone; the first one is reported
                self._errors.append(exc)
                self.stop.set()
            finally:
                self._tasks.task_done()
        self._tasks.task_done()

    def _next(self) -> Task | None:
        if not trace.ENABLED:
            return self._tasks.get()[2]
        with trace.span("idle"):
            return self._tasks.get()[2]

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._work, args=(db,), name=f"dump-{i}", daemon=True)
            for i, db in enumerate(self.workers)
        ]
        for t in threads:
            t.start()
        try:
            self._tasks.join()  # counts the tasks queued on the way, so this waits for all of them
        except KeyboardInterrupt:
            self.stop.set()
            raise
        finally:
            for _ in threads:
                self._tasks.put((_DONE, next(self._added), None))
            for t in threads:
                t.join(timeout=60)
        if self._errors:
            raise storage_first(self._errors)


def dump_tables(
    workers: list[DB],
    storage: Storage,
    catalog: Catalog,
    config: DumpConfig,
    progress: Progress,
    *,
    on_tidb: bool = False,
    sql_header: bytes = SQL_HEADER,
    chunks: list[Chunk] | None = None,
) -> list[FileRecord]:
    """Every table's data (biggest first) and then every table's and view's schema file: the small
    schema tasks fill the gaps at the end instead of delaying the first rows. ``chunks``: just these."""
    fmt = RowFormat(config.filetype, config.escape_backslash, config.csv)
    mode = read_mode_for(config, fmt, on_tidb)
    log.debug("read mode %s", mode)
    pool = WorkerPool(workers)
    # A few files committing at once overlap their uploads with reading; more would only hold more
    # buffers (up to a part, 8 MiB, each on S3).
    # (A local folder's files are closed by the worker itself: a close and a rename, see Finisher.)
    finisher = Finisher(
        min(max(2, len(workers)), FILES_COMMITTING), on_error=pool.stop.set,
        background=not isinstance(storage, LocalStorage),
    )  # fmt: skip
    files: list[FileRecord] = []
    lock = threading.Lock()
    split = mode == "client" and chunks is None
    halves: list[SharedChunk] = []

    # The schema files are queued once every table is planned: queued at the start, one would run
    # while the first table is still being planned and hold back that worker's first chunk (bench/trace.py).
    plans_left = [0 if chunks is not None or config.no_data else len(catalog.base_tables)]

    def queue_schemas() -> None:
        if not config.no_schemas and chunks is None:
            for table in catalog.tables:
                pool.add(functools.partial(schema, table), SCHEMA)

    def on_file(record: FileRecord) -> None:
        with lock:
            files.append(record)
        progress.file_done()

    def plan(table: Table, db: DB) -> None:
        offset = 0  # --partitions: each partition planned alone, numbered on from the one before
        for part in config.partitions or ("",):
            with trace.span("plan", table.name):
                planned = plan_chunks(
                    db, evolve(table, partition=part), where=config.where,
                    chunk_rows=config.rows, bulk=mode == "bulk", on_tidb=on_tidb,
                )  # fmt: skip
            # The last chunks are read in halves by two workers each, so no worker idles at the end.
            halves_from = len(planned) - len(workers) if split and read_in_halves(table, len(planned), len(workers)) else len(planned)  # fmt: skip
            for i, chunk in enumerate(planned):
                chunk = evolve(chunk, index=chunk.index + offset)
                if i >= halves_from and chunk.halves:
                    # The very last chunk in quarters: the first worker done waits at most a quarter.
                    last = i == len(planned) - 1 and chunk.quarters and last_in_quarters(table, len(planned))
                    parts = chunk.quarters if last else chunk.halves
                    shared = SharedChunk(
                        chunk_writer(
                            chunk, storage, config, fmt, on_file, progress.add, finisher, sql_header
                        ),
                        fmt.separator,
                        len(parts),
                    )
                    halves.append(shared)
                    for piece in range(len(parts)):
                        pool.add(functools.partial(read_part, chunk, shared, piece, parts))
                else:
                    pool.add(functools.partial(read, chunk))
            offset += len(planned)
        with lock:
            plans_left[0] -= 1
            last = plans_left[0] == 0
        if last:
            queue_schemas()

    def read(chunk: Chunk, db: DB) -> None:
        writer = chunk_writer(chunk, storage, config, fmt, on_file, progress.add, finisher, sql_header)
        dump_chunk(db, chunk, writer, config, fmt, pool.stop, client=mode == "client")

    def read_part(chunk: Chunk, shared: SharedChunk, part: int, parts: tuple[str, ...], db: DB) -> None:
        dump_part(db, chunk, shared, part, parts, config, fmt, pool.stop)

    def schema(table: Table, db: DB) -> None:
        with trace.span("schema", table.name):
            files = table_schema_files(db, table, on_tidb=on_tidb)
        for name, data in files.items():
            suffix = config.compression.suffix
            finisher.write_whole(
                storage, name + suffix, data, config.compression, table.schema, table.name, on_file,
                config.manifest_checksum,
            )  # fmt: skip

    if chunks is not None:
        for chunk in chunks:
            pool.add(functools.partial(read, chunk))
    elif not config.no_data:
        for table in sorted(catalog.base_tables, key=lambda t: -t.est_rows):
            pool.add(functools.partial(plan, table), PLAN)
    if not plans_left[0]:
        queue_schemas()
    try:
        pool.run()
    except BaseException as exc:
        for shared in halves:  # once the workers stopped: a failed or unfinished half leaves no file
            shared.abort()
        finisher.wait(raise_errors=False)  # the workers' failure is the one to report…
        first = storage_first([exc, *finisher.errors])
        if isinstance(exc, Exception) and first is not exc:
            raise first from exc  # …unless S3 failed too: then that is the cause
        raise
    finisher.wait()
    return files


def storage_first(errors: list[BaseException]) -> BaseException:
    """The error to report among several: a storage failure wins, because a stalled upload makes the
    workers' database sessions time out while they wait (the database is then only a victim)."""
    from tibackup.errors import StorageError

    return next((e for e in errors if isinstance(e, StorageError)), errors[0])
