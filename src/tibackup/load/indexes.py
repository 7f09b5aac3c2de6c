"""Secondary indexes after the data: a table the load creates gets its plain secondary indexes
(``KEY …``) only once its rows are in, built in one sorted pass per table (``ALTER TABLE … ADD KEY …,
ADD KEY …``) instead of one random B-tree insert per row — on a table whose index outgrows the buffer
pool, one random page read and write per row.

Which indexes wait: only plain ``KEY`` lines of an InnoDB table's ``SHOW CREATE TABLE`` (prefix,
multi-column, DESC, COMMENT, IGNORED/INVISIBLE included). PRIMARY and UNIQUE keys stay (REPLACE and
INSERT IGNORE depend on them), FULLTEXT and SPATIAL stay, a key that holds the AUTO_INCREMENT column
first stays (the table cannot be created without it), and a table with a FOREIGN KEY, or one that a
FOREIGN KEY of the backup refers to, keeps all its keys. The server sorts the keys of a table
(unique first, then the others in the order they were added, FULLTEXT last), so only the keys after
the last one that stays can wait and the finished table's definition is exactly the source's.

When: a table's keys are built as soon as its last data file is committed, on the data session that
committed it (``build_table``, called by the data stage), while the other sessions go on loading the
other tables — so on a backup of many tables the index builds overlap the data instead of all waiting
for the last table. What the data stage did not build (tables whose data an earlier run loaded, tables
without data files, a load stopped early) is built after the data over the ``-t`` sessions
(``build``), before the views.

Crash safety: before a table is created without its keys, its checkpoint gets a ``DEFERRED`` mark
(file ``table:<db>.<table>``); each build compares the table's schema file with the table's indexes
(information_schema.STATISTICS) and adds whatever is missing by name, and after the data every marked
table not built by this run is checked so — so a rerun after a kill at any moment (before, during,
after an ALTER, while other tables load) ends with the full definition. Tables that existed before
the load are never altered. The finished mark comes after this stage.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass

from tibackup.dump import tidb
from tibackup.dump.conn import DB, ServerType, quote_ident, quote_string
from tibackup.errors import DatabaseError
from tibackup.load.checkpoint import DEFERRED, Checkpoint, Committed, claim_name
from tibackup.load.config import LoadConfig
from tibackup.load.execute import open_session
from tibackup.load.plan import LoadPlan
from tibackup.load.schema import file_statements
from tibackup.load.source import BackupFile, Source
from tibackup.load.stopping import RunningStatements
from tibackup.record import evolve

log = logging.getLogger("tibackup.load")

_NAME = rb"`((?:[^`]|``)+)`"
_CREATE = re.compile(rb"\s*CREATE\s+TABLE\s", re.IGNORECASE)
_PLAIN_KEY = re.compile(rb"KEY " + _NAME + rb" \(`((?:[^`]|``)+)`")  # its name and first column
_INDEX = re.compile(rb"(?:(?:UNIQUE|FULLTEXT|SPATIAL) )?KEY " + _NAME + rb" ")
_SORTED_FIRST = (b"PRIMARY KEY", b"UNIQUE KEY", b"FULLTEXT KEY", b"CONSTRAINT ", b"PERIOD FOR ")
_COLUMN = re.compile(_NAME + rb" ")
_AUTO_INCREMENT = re.compile(rb"\sAUTO_INCREMENT\b")
_REFERENCES = re.compile(rb"\bREFERENCES " + _NAME + rb"(?:\." + _NAME + rb")?")
DUPLICATE_KEY_NAME = 1061  # an ALTER of a killed run finished meanwhile: read what is there again


@dataclass(frozen=True)
class Deferred:
    """A CREATE TABLE without the keys that wait, and those keys (their lines, comma dropped)."""

    create: bytes
    keys: tuple[bytes, ...]


def _definition(create: bytes) -> tuple[list[bytes], int] | None:
    """The statement's lines and the index of its closing ``)`` line, if it has SHOW CREATE TABLE's
    shape (one definition per line) — otherwise None, and nothing is deferred."""
    if not _CREATE.match(create):
        return None
    lines = create.lstrip().split(b"\n")
    if not lines[0].endswith(b"("):
        return None
    for i, line in enumerate(lines[1:], 1):
        if line.startswith(b")"):
            return lines, i
    return None


def references(create: bytes, db: str) -> set[tuple[str, str]]:
    """The tables the statement's FOREIGN KEYs refer to, (db, table)."""
    out = set()
    for m in _REFERENCES.finditer(create):
        first, second = (_unquote(g) for g in m.groups(b""))
        out.add((first, second) if m.group(2) else (db, first))
    return out


def defer_keys(create: bytes, referenced: bool = False) -> Deferred | None:
    """The statement without the plain keys that can be built after the data (None: none can)."""
    shape = _definition(create)
    if shape is None or referenced:
        return None
    lines, close = shape
    if not re.search(rb"\bENGINE=InnoDB\b", lines[close]):
        return None
    body = [line.strip() for line in lines[1:close]]
    if any(b"FOREIGN KEY" in line for line in body):
        return None
    auto = {
        m.group(1) for line in body if (m := _COLUMN.match(line)) and _AUTO_INCREMENT.search(line)
    }
    waiting: list[int] = []
    for i, line in enumerate(body):
        key = _PLAIN_KEY.match(line)
        if key and key.group(2) not in auto:
            waiting.append(i)
        elif not line.startswith((b"`", *_SORTED_FIRST)):
            waiting.clear()  # a key that stays sorts among the plain ones: only those after it wait
    if not waiting:
        return None
    keys = tuple(body[i].removesuffix(b",") for i in waiting)
    waits = set(waiting)
    kept = [line.removesuffix(b",") for i, line in enumerate(body) if i not in waits]
    head = create[: len(create) - len(create.lstrip())] + lines[0]
    rebuilt = b"\n".join([head, b",\n".join(b"  " + line for line in kept), *lines[close:]])
    return Deferred(rebuilt, keys)


def index_clauses(create: bytes) -> list[tuple[str, bytes]]:
    """(name, definition) of every secondary index line of the statement, in order."""
    shape = _definition(create)
    if shape is None:
        return []
    lines, close = shape
    out = []
    for line in lines[1:close]:
        m = _INDEX.match(line.strip())
        if m:
            out.append((_unquote(m.group(1)), line.strip().removesuffix(b",")))
    return out


def add_index_statements(server: ServerType, version: str, table: str, clauses: list[bytes]) -> list[bytes]:
    """The ALTERs that add ``clauses`` to ``table`` (quoted): one for all, or one each on a TiDB whose
    ALTER takes one change at a time."""
    if server is ServerType.TIDB and not tidb.takes_several_changes(version):
        return [f"ALTER TABLE {table} ADD ".encode() + c for c in clauses]
    return [f"ALTER TABLE {table} ".encode() + b", ".join(b"ADD " + c for c in clauses)]


def _unquote(name: bytes) -> str:
    return name.replace(b"``", b"`").decode("utf-8", "surrogateescape")


def _create_statement(statements: list[bytes]) -> int | None:
    return next((i for i, sql in enumerate(statements) if _CREATE.match(sql)), None)


class DeferredIndexes:
    """The tables whose keys wait (this run's and the earlier runs' of the same load), and the stage
    that builds them after the data."""

    def __init__(
        self,
        source: Source,
        plan: LoadPlan,
        config: LoadConfig,
        checkpoint: Checkpoint | None,
        done: dict[str, Committed],
    ) -> None:
        self.source, self.plan, self.config, self.checkpoint = source, plan, config, checkpoint
        self.tables: set[tuple[str, str]] = {
            name for name in plan.table_names if DEFERRED in done.get(claim_name(*name), set())
        }
        self.alterable: set[str] = set()  # databases where the account may ALTER: set by the loader
        self._files = {(f.db, f.table): f for f in plan.tables if (f.db, f.table) not in plan.view_names}
        self._statements: dict[str, list[bytes]] = {}
        self._clauses: dict[tuple[str, str], list[tuple[str, bytes]]] = {}  # set by prepare
        self._server: tuple[ServerType, str] = (ServerType.MYSQL, "")
        self.built: set[tuple[str, str]] = set()  # the tables whose keys this run completed
        self._lock = threading.Lock()

    def _read(self, file: BackupFile) -> list[bytes]:
        if file.name not in self._statements:
            self._statements[file.name] = file_statements(self.source, self.plan, file)
        return self._statements[file.name]

    def create_statements(self, db: DB, files: list[BackupFile]) -> dict[str, list[bytes]]:
        """The statements that create ``files``' tables, the waiting keys taken out; the tables whose
        keys wait are marked in the checkpoint before this returns (so before any is created)."""
        out = {f.name: list(self._read(f)) for f in files}
        if not self.config.defer_indexes or not files:
            return out
        referenced: set[tuple[str, str]] = set()
        for file in self._files.values():
            for sql in self._read(file):
                referenced |= references(sql, file.db)
        chosen: list[tuple[str, str]] = []
        for file in files:
            name = (file.db, file.table)
            i = _create_statement(out[file.name])
            if i is None or name not in self._files or file.db not in self.alterable:
                continue
            deferred = defer_keys(out[file.name][i], name in referenced)
            if deferred is not None:
                out[file.name][i] = deferred.create
                chosen.append(name)
        if chosen and self.checkpoint is not None:
            db.execute(self.checkpoint.mark_sql(chosen, DEFERRED), "recording the tables whose keys wait")
        self.tables.update(chosen)
        return out

    def prepare(self, db: DB) -> None:
        """Before the data: the index lines of every marked table (read here, not in the sessions)."""
        info = db.server_info()
        self._server = (info.type, info.version)
        for name in sorted(self.tables & set(self._files)):
            statements = self._read(self._files[name])
            i = _create_statement(statements)
            if i is not None:
                self._clauses[name] = index_clauses(statements[i])

    def waits(self, name: tuple[str, str]) -> bool:
        """The table's keys wait for its data and this run has not completed them yet."""
        with self._lock:
            return name in self._clauses and name not in self.built

    def build_table(self, db: DB, name: tuple[str, str]) -> int:
        """Add the keys ``name`` misses (its data is in), on ``db``; how many were added."""
        clauses = _missing(db, name, self._clauses[name])
        if clauses:
            log.debug("adding %d secondary index(es) to %s.%s: its data is in", len(clauses), *name)
            _add(db, *self._server, name, clauses)
        with self._lock:
            self.built.add(name)
        return len(clauses)

    def session(self) -> DB:
        """A session for index builds: an index build takes as long as the table is big, so no read
        timeout (``--read-timeout`` bounds the data sessions)."""
        return open_session(evolve(self.config.connection, read_timeout=None), self.config)

    def build(self, db: DB) -> int:
        """Add every key the marked tables not built by the data stage miss, tables over ``-t``
        sessions at once; how many were added."""
        if not self._clauses:
            self.prepare(db)
        work: list[tuple[tuple[str, str], list[bytes]]] = []
        for name in sorted(set(self._clauses) - self.built):
            clauses = _missing(db, name, self._clauses[name])
            if clauses:
                work.append((name, clauses))
        if self.built:
            log.info("added the secondary indexes of %d table(s) as their data came in", len(self.built))
        if not work:
            return 0
        keys = sum(len(c) for _, c in work)
        log.info("adding %d secondary index(es) to %d table(s) after the data", keys, len(work))
        server, version = self._server
        jobs: queue.Queue[tuple[tuple[str, str], list[bytes]]] = queue.Queue()
        for job in work:
            jobs.put(job)
        errors: list[BaseException] = []
        running = RunningStatements(self.config)  # what an interruption stops

        def build_loop(index: int) -> None:
            try:
                session = self.session()
                running.remember(index, session)
            except BaseException as exc:
                errors.append(exc)
                return
            try:
                while not errors:
                    try:
                        name, clauses = jobs.get_nowait()
                    except queue.Empty:
                        return
                    _add(session, server, version, name, clauses)
            except BaseException as exc:
                errors.append(exc)
            finally:
                session.close()

        sessions = min(self.config.threads, len(work))
        threads = [threading.Thread(target=build_loop, args=(i,), daemon=True) for i in range(sessions)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except KeyboardInterrupt:  # the builds are stopped (an ALTER waiting on a lock too), rolled back
            errors.append(KeyboardInterrupt())
            running.stop(threads)
            raise
        if errors:
            raise errors[0]
        return keys


def _missing(db: DB, table: tuple[str, str], clauses: list[tuple[str, bytes]]) -> list[bytes]:
    """The clauses whose index the table does not have (by name; names are case-insensitive)."""
    there = {
        (row[0] or "").lower()
        for row in db.query_text(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
            f"{quote_string(table[0])} AND TABLE_NAME = {quote_string(table[1])}",
            f"reading the indexes of {table[0]}.{table[1]}",
        )
    }
    return [clause for name, clause in clauses if name.lower() not in there]


def _add(db: DB, server: ServerType, version: str, name: tuple[str, str], clauses: list[bytes]) -> None:
    """Add ``clauses`` to the table; an ALTER that a killed run left behind may finish first (the key
    name then exists): read the table's indexes again and add what is still missing."""
    table = f"{quote_ident(name[0])}.{quote_ident(name[1])}"
    doing = f"adding the secondary indexes of {name[0]}.{name[1]}"
    for _ in range(3):
        try:
            for sql in add_index_statements(server, version, table, clauses):
                db.execute_bytes(sql, doing)
            return
        except DatabaseError as exc:
            if exc.code != DUPLICATE_KEY_NAME:
                raise
            wanted = [(_name_of(c), c) for c in clauses]
            clauses = _missing(db, name, wanted)
            if not clauses:
                return
    raise DatabaseError(f"{doing}: the key names keep appearing while adding them; run the load again")


def _name_of(clause: bytes) -> str:
    m = _INDEX.match(clause)
    return _unquote(m.group(1)) if m else ""
