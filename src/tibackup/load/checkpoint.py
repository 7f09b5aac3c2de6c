"""Checkpoint: how far a load got, kept in the target database itself, in the same transaction as the
rows it covers — so a load killed at any moment and run again loads every statement exactly once.

Table ``tibackup_load.checkpoints`` (InnoDB), one row per:
  - committed group of data statements (consecutive statements of one file loaded in one transaction):
    (load id, file, offset of its first statement, rows, offset of its last statement), written by the
    same transaction as the group's rows;
  - finished file: offset ``FILE_DONE`` (a rerun skips the file without reading it);
  - table this load took over: file ``table:<db>.<table>``, offset ``CLAIMED`` (a rerun does not take
    the rows it loaded itself for someone else's);
  - table this load creates without its plain secondary keys: the same file, offset ``DEFERRED``,
    written before the table is created (the keys are added after the data, see indexes.py);
  - finished load: file ``load:finished``, offset ``FINISHED``, the rows it loaded — the one row a
    finished load keeps, written by the transaction that deletes all its other rows, so a rerun after
    the end (killed before it could exit, or run again by hand) finds "already loaded", not a target
    that holds someone's rows.
The load id is a hash of the source, its ``metadata`` and the options that change what is loaded, so
only a rerun of the same load resumes.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from tibackup.dump.conn import DB, quote_ident

SCHEMA = "tibackup_load"
TABLE = f"{quote_ident(SCHEMA)}.`checkpoints`"
FILE_DONE = -1
CLAIMED = -2
FINISHED = -3
DEFERRED = -4
FINISHED_FILE = "load:finished"


def _hex(data: bytes) -> str:
    return "X'" + data.hex() + "'"


class Committed:
    """What a load committed in one file: its marks (``FILE_DONE``, ``CLAIMED``) and the offset ranges of
    its committed groups; ``offset in committed`` says whether that statement (or mark) is done."""

    def __init__(self) -> None:
        self.marks: set[int] = set()
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, first: int, last: int) -> None:
        if first < 0:
            self.marks.add(first)
            return
        i = bisect.bisect_left(self._starts, first)
        self._starts.insert(i, first)
        self._ends.insert(i, last)

    def __contains__(self, offset: object) -> bool:
        if not isinstance(offset, int):
            return False
        if offset < 0:
            return offset in self.marks
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset <= self._ends[i]

    def __bool__(self) -> bool:
        return bool(self.marks or self._starts)


class Checkpoint:
    def __init__(self, load_id: str) -> None:
        self.load_id = load_id
        self._id = "'" + load_id + "'"  # hex digits only: safe as a literal
        self.finished_rows: int | None = None  # set by prepare when this load had finished before

    def prepare(self, db: DB) -> dict[str, Committed]:
        """Create the table if needed; return what this load already did: file → what it committed."""
        db.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(SCHEMA)}", "creating the checkpoint schema")
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (load_id CHAR(32) CHARACTER SET ascii NOT NULL, "
            "file VARBINARY(1024) NOT NULL, pos BIGINT NOT NULL, `rows` BIGINT NOT NULL DEFAULT 0, "
            "upto BIGINT NOT NULL DEFAULT -1, PRIMARY KEY (load_id, file, pos)) ENGINE=InnoDB",
            "creating the checkpoint table",
        )
        if not db.query(
            "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'tibackup_load' "
            "AND TABLE_NAME = 'checkpoints' AND COLUMN_NAME = 'upto'"
        ):  # a table of an earlier version (one row per statement: the range of one)
            db.execute(
                f"ALTER TABLE {TABLE} ADD COLUMN upto BIGINT NOT NULL DEFAULT -1", "upgrading the checkpoint"
            )
        done: dict[str, Committed] = defaultdict(Committed)
        for file, pos, rows, upto in db.query(
            f"SELECT file, pos, `rows`, upto FROM {TABLE} WHERE load_id = {self._id}",
            "reading the checkpoint",
        ):
            first = int(pos or 0)
            if first == FINISHED:
                self.finished_rows = int(rows or 0)
            done[(file or b"").decode("utf-8", "surrogateescape")].add(first, max(first, int(upto or 0)))
        return dict(done)

    def group_sql(self, file: str, first: int, last: int, rows: int) -> bytes:
        """The row that marks the statements from offset ``first`` to ``last`` of ``file`` done; run it
        in the transaction that loads them."""
        return (
            f"INSERT INTO {TABLE} VALUES ({self._id}, {_hex(file.encode('utf-8', 'surrogateescape'))}, "
            f"{int(first)}, {int(rows)}, {int(last)})"
        ).encode()

    def mark(self, db: DB, file: str, offset: int) -> None:
        db.execute(self.group_sql(file, offset, offset, 0).decode().replace("INSERT", "INSERT IGNORE", 1))

    def claim_sql(self, tables: list[tuple[str, str]]) -> str:
        return self.mark_sql(tables, CLAIMED)

    def mark_sql(self, tables: list[tuple[str, str]], mark: int) -> str:
        """One mark (``CLAIMED``, ``DEFERRED``) for each of ``tables``."""
        values = ", ".join(
            f"({self._id}, {_hex(claim_name(db, t).encode('utf-8', 'surrogateescape'))}, {int(mark)}, 0, {int(mark)})"
            for db, t in tables
        )
        return f"INSERT IGNORE INTO {TABLE} VALUES {values}"

    def finish(self, db: DB, rows: int) -> None:
        """One transaction: every row of this load goes, the one ``FINISHED`` row (with the rows it
        loaded) comes. Killed before its commit, a rerun resumes (and finds everything done); after
        it, a rerun finds the load finished."""
        db.execute("BEGIN", "recording the finished load")
        db.execute(f"DELETE FROM {TABLE} WHERE load_id = {self._id}", "removing the checkpoint")
        db.execute_bytes(
            self.group_sql(FINISHED_FILE, FINISHED, FINISHED, rows), "recording the finished load"
        )
        db.execute("COMMIT", "recording the finished load")

    def forget_finished(self, db: DB) -> None:
        """The tables of a finished load were dropped or emptied since: its mark goes, it loads afresh."""
        db.execute(f"DELETE FROM {TABLE} WHERE load_id = {self._id}", "removing the finished mark")
        self.finished_rows = None


def claim_name(db: str, table: str) -> str:
    return f"table:{db}.{table}"
