"""Execute: statements into the target over ``-t`` sessions, a group of them per transaction.

Readers stream files (several at once from a folder, one from an archive) and cut them into
statements, and gather consecutive statements of one file into groups (at most ``GROUP_STATEMENTS``
statements, and a byte bound that keeps every group in memory under ``GROUP_MEMORY`` together); a
bounded queue hands the groups to the sessions, so one big file loads over every session. Each group
runs in one transaction together with the one checkpoint row that says it is done (see
checkpoint.py): one commit per group, not per statement (myloader too commits 1000 queries at a time).
A group the server rolled back (deadlock, lock wait timeout) runs again whole. A file's session
statements (``SET NAMES …``) run on whichever session takes the file's next group. The session that
commits a table's last file (its file mark) builds that table's waiting keys there and then
(indexes.py), while the others load on: no extra connection.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from tibackup.dump.config import Connection
from tibackup.dump.conn import DB, quote_ident, quote_string
from tibackup.dump.progress import Progress
from tibackup.errors import DatabaseError
from tibackup.load.checkpoint import FILE_DONE, Checkpoint, Committed
from tibackup.load.config import LoadConfig, OnDuplicate
from tibackup.load.csvdata import csv_statements
from tibackup.load.plan import LoadPlan
from tibackup.load.read import CheckedReader, decompressed, manifest_first, split_statements
from tibackup.load.source import BackupFile, Source
from tibackup.load.stopping import RunningStatements

if TYPE_CHECKING:
    from tibackup.load.indexes import DeferredIndexes

log = logging.getLogger("tibackup.load")

_INSERT = re.compile(rb"\s*INSERT\s+INTO\s", re.IGNORECASE)
_DATA = re.compile(rb"\s*(?:INSERT|REPLACE)\s", re.IGNORECASE)
RETRIES = 5
GROUP_STATEMENTS = 1000  # statements per transaction at most (myloader's default -q)
GROUP_BYTES = 4 << 20  # bytes of statements per transaction at most …
GROUP_MEMORY = 96 << 20  # … and less with many sessions: groups alive (read, queued, running) fit in this
RETRYABLE = {1213, 1205}  # deadlock (the transaction was rolled back), lock wait timeout
_REWRITE = {OnDuplicate.REPLACE: b"REPLACE INTO ", OnDuplicate.IGNORE: b"INSERT IGNORE INTO "}


def prepare_session(db: DB, config: LoadConfig) -> None:
    """Loading settings: no foreign key checks (tables load in any order) and the dump's own string
    handling. ``unique_checks`` stays on: with it off too, MariaDB (10.6+) loads the first transaction
    into an empty table under a table lock as a bulk insert, which stalls the other sessions and cost
    more server CPU in the benchmark (docs/load.md)."""
    sql_mode = config.sql_mode
    if not config.escape_backslash:
        sql_mode = ",".join(filter(None, [sql_mode, "NO_BACKSLASH_ESCAPES"]))
    db.execute(f"SET SESSION sql_mode = {quote_string(sql_mode)}", "setting sql_mode")
    db.execute("SET SESSION foreign_key_checks = 0", "setting foreign_key_checks")


def open_session(connection: Connection, config: LoadConfig) -> DB:
    """A new session with the load's settings (``--params``, ``prepare_session``)."""
    db = DB(connection, config.params)
    try:
        prepare_session(db, config)
    except BaseException:
        db.close()
        raise
    return db


def rewrite(sql: bytes, on_duplicate: OnDuplicate) -> bytes:
    """``INSERT INTO`` → ``REPLACE INTO`` / ``INSERT IGNORE INTO`` per --on-duplicate."""
    if on_duplicate is OnDuplicate.ERROR:
        return sql
    m = _INSERT.match(sql)
    return _REWRITE[on_duplicate] + sql[m.end() :] if m else sql


def one_line(error: DatabaseError, file: str) -> DatabaseError:
    """A statement's error text may quote the statement, newlines and all: keep its first 250 and
    last 150 chars on one line (the end names the fix), and name the file."""
    text = " ".join(error.message.split())
    if len(text) > 400:
        text = text[:250] + "…" + text[-150:]
    out = DatabaseError(f"{text} (in {file})", reason=error.reason)
    out.code = error.code
    return out


def group_bytes(sessions: int) -> int:
    """Bytes per group: at most three groups per session are alive (being read, queued, running)."""
    return max(1 << 20, min(GROUP_BYTES, GROUP_MEMORY // (3 * max(1, sessions))))


@dataclass
class _Work:
    """Consecutive data statements of one file, (offset, statement) each, loaded in one transaction;
    none: the file is done (every group of it committed)."""

    file: BackupFile
    statements: list[tuple[int, bytes]]
    session: tuple[bytes, ...]
    size: int = 0


class _FileState:
    """Counts a file's groups in flight, to mark the file done once the last one is committed."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.read_all = False
        self.lock = threading.Lock()


class DataLoader:
    def __init__(
        self,
        sessions: list[DB],
        source: Source,
        plan: LoadPlan,
        config: LoadConfig,
        checkpoint: Checkpoint | None,
        done: dict[str, Committed],
        progress: Progress,
        indexes: DeferredIndexes | None = None,
    ) -> None:
        self.sessions, self.source, self.plan, self.config = sessions, source, plan, config
        self.indexes = indexes  # tables whose keys wait: built by the session that loads their last file
        self._tables_left: Counter[tuple[str, str]] = Counter()  # data files of each table not yet done
        self.checkpoint, self.done, self.progress = checkpoint, done, progress
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._queue: queue.Queue[_Work | None] = queue.Queue(maxsize=len(sessions))
        self.group_statements, self.group_bytes = GROUP_STATEMENTS, group_bytes(len(sessions))
        self._states: dict[str, _FileState] = {}
        self.table_rows: dict[tuple[str, str], int] = {}  # rows inserted per table by this run
        self._rows_lock = threading.Lock()
        self.running = RunningStatements(config)  # what an interruption stops

    # -- the whole stage -------------------------------------------------------------------------
    def run(self, files: list[BackupFile]) -> None:
        todo = [f for f in files if FILE_DONE not in self.done.get(f.name, set())]
        by_name = {f.name: f for f in todo}
        names: queue.Queue[str] = queue.Queue()
        for f in todo:
            names.put(f.name)
            self._states[f.name] = _FileState()
            self._tables_left[(f.db, f.table)] += 1
        readers = len(self.sessions) if self.source.parallel else 1

        def read_loop() -> None:
            try:
                if self.source.parallel:
                    while not self.stop.is_set():
                        try:
                            name = names.get_nowait()
                        except queue.Empty:
                            return
                        for _, stream in self.source.streams([name]):
                            self._read(by_name[name], stream)
                else:
                    for name, stream in self.source.streams([f.name for f in todo]):
                        if self.stop.is_set():
                            return
                        self._read(by_name[name], stream)
            except BaseException as exc:
                self._fail(exc)

        threads = [
            threading.Thread(target=self._execute_loop, args=(i,), daemon=True) for i in range(len(self.sessions))
        ]
        reader_threads = [threading.Thread(target=read_loop, daemon=True) for _ in range(readers)]
        for t in (*threads, *reader_threads):
            t.start()
        try:
            for t in reader_threads:
                t.join()
            for _ in threads:
                self._put(None, force=True)
            for t in threads:  # every queued statement is done before the load goes on to views and checks
                t.join()
        except KeyboardInterrupt:
            # The sessions drop the queue; their statements are stopped (one waiting on a lock, or a
            # long one, must not hold Ctrl-C up), their open transactions roll back.
            self.stop.set()
            self.running.stop(threads, self._queue)
            raise
        if self.errors:
            raise self.errors[0]

    def _fail(self, exc: BaseException) -> None:
        if not self.stop.is_set():
            self.errors.append(exc)
        self.stop.set()

    def _put(self, work: _Work | None, *, force: bool = False) -> None:
        while True:
            if self.stop.is_set() and not force:
                raise _Stopped
            try:
                self._queue.put(work, timeout=0.2)
                return
            except queue.Full:
                continue

    # -- reading ---------------------------------------------------------------------------------
    def _statements(self, file: BackupFile, reader: CheckedReader) -> Iterator[tuple[int, bytes]]:
        chunks = decompressed(reader, file.compression)
        if file.csv:
            return csv_statements(chunks, file, self.config)
        return split_statements(chunks, backslash_escapes=self.config.escape_backslash, name=file.name)

    def _read(self, file: BackupFile, stream: BinaryIO) -> None:
        want = self.plan.expected.get(file.name)
        reader = CheckedReader(stream, file.name, lambda n: self.progress.add(0, n), want)
        done = self.done.get(file.name) or Committed()
        state = self._states[file.name]
        session: tuple[bytes, ...] = ()
        group: _Work | None = None  # the last group waits until the whole file is verified
        statements = manifest_first(self._statements(file, reader), reader)
        try:
            for offset, sql in statements:
                if self.stop.is_set():
                    return
                if not _DATA.match(sql):
                    session += (sql,)  # SET NAMES and other session settings of this file
                    continue
                if offset in done:
                    continue
                if group is not None and (
                    group.session is not session
                    or len(group.statements) >= self.group_statements
                    or group.size + len(sql) > self.group_bytes
                ):
                    self._submit(group, state)
                    group = None
                if group is None:
                    group = _Work(file, [], session)
                group.statements.append((offset, sql))
                group.size += len(sql)
            reader.check()
            if group is not None:
                self._submit(group, state)
        except _Stopped:
            return
        self.progress.file_done()
        self._finish_reading(file, state)

    def _submit(self, work: _Work, state: _FileState) -> None:
        with state.lock:
            state.in_flight += 1
        self._put(work)

    def _finish_reading(self, file: BackupFile, state: _FileState) -> None:
        with state.lock:
            state.read_all = True
            last = state.in_flight == 0
        if last:  # every statement is in: a session marks the file (and builds its table's keys)
            self._put(_Work(file, [], ()))

    # -- executing -------------------------------------------------------------------------------
    def _execute_loop(self, index: int) -> None:
        current_db = ""
        session: tuple[bytes, ...] = ()
        while (work := self._queue.get()) is not None:
            if self.stop.is_set():
                continue
            db = self.sessions[index]
            try:
                self.running.remember(index, db)
                file = work.file
                if not work.statements:
                    if self.checkpoint is not None:
                        self.checkpoint.mark(db, file.name, FILE_DONE)
                    if self._file_loaded(index, file):
                        current_db, session = "", ()  # a new session after an index build
                    continue
                if file.db != current_db:
                    db.execute(f"USE {quote_ident(file.db)}", f"selecting database {file.db}")
                    current_db = file.db
                if work.session is not session:
                    for statement in work.session:
                        db.execute_bytes(statement, f"loading {file.name}")
                    session = work.session
                rows = self._run(db, work)
                self.progress.add(rows, 0)
                with self._rows_lock:
                    key = (file.db, file.table)
                    self.table_rows[key] = self.table_rows.get(key, 0) + rows
                state = self._states[file.name]
                with state.lock:
                    state.in_flight -= 1
                    last = state.read_all and state.in_flight == 0
                if last and self.checkpoint is not None:
                    self.checkpoint.mark(db, file.name, FILE_DONE)
                if last and self._file_loaded(index, file):
                    current_db, session = "", ()
            except DatabaseError as exc:
                self._fail(one_line(exc, work.file.name))
            except BaseException as exc:
                self._fail(exc)

    def _file_loaded(self, index: int, file: BackupFile) -> bool:
        """A file is done (its mark committed): if it was its table's last and the table's keys wait,
        build them on this session (one without a read timeout in its place meanwhile, the
        connections stay ``-t``); True if the session was replaced."""
        name = (file.db, file.table)
        with self._rows_lock:
            self._tables_left[name] -= 1
            last = self._tables_left[name] == 0
        if not last or self.indexes is None or not self.indexes.waits(name) or self.stop.is_set():
            return False
        try:
            if not self.config.connection.read_timeout:
                self.indexes.build_table(self.sessions[index], name)
                return False
            self.sessions[index].close()
            builder = self.indexes.session()
            try:
                self.running.remember(index, builder)
                self.indexes.build_table(builder, name)
            finally:
                builder.close()
            self.sessions[index] = open_session(self.config.connection, self.config)
        except BaseException as exc:
            self._fail(exc)
        return True

    def _run(self, db: DB, work: _Work) -> int:
        """One group (and its checkpoint row) in one transaction; a transaction the server rolled
        back for a deadlock or a lock wait is run again whole, a few times."""
        doing = f"loading {work.file.name}"
        for attempt in range(RETRIES + 1):
            try:
                db.execute("BEGIN", doing)
                rows = 0
                for _, sql in work.statements:
                    if self.stop.is_set():
                        raise _Stopped  # (its transaction is rolled back when the session closes)
                    rows += db.execute_bytes(rewrite(sql, self.config.on_duplicate), doing)
                if self.checkpoint is not None:
                    first, last = work.statements[0][0], work.statements[-1][0]
                    record = self.checkpoint.group_sql(work.file.name, first, last, rows)
                    db.execute_bytes(record, "recording progress")
                db.execute("COMMIT", doing)
                return rows
            except DatabaseError as exc:
                if exc.code not in RETRYABLE or attempt == RETRIES or self.stop.is_set():
                    raise
                log.debug("%s: %s; running the transaction again", work.file.name, exc.message)
                db.execute("ROLLBACK", doing)  # a lock wait timeout leaves the transaction open
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


class _Stopped(Exception):
    """Another thread failed: this one stops quietly."""
