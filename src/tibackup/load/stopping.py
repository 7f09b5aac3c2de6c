"""Stopping a load now: Ctrl-C or SIGTERM ends the sessions' statements instead of waiting for them.

A session waiting on a lock someone else holds (``LOCK TABLES``, a long ``ALTER``, a transaction left
open) would otherwise keep the load — and the Ctrl-C — waiting for as long as the lock is held. Each
session's server connection id is known (asked once per connection); an interruption runs ``KILL
QUERY`` on each from a connection of its own, round after round until the sessions have ended. Their
open transactions roll back; what was committed (rows and checkpoint rows together) stays.

The main session (the checks before the data, schemas, views, the row check, the finished mark) is
stopped the same way: ``MainSession`` runs each of its statements on a thread of its own while the
caller's thread waits, so the signal is seen at once (a thread inside the client library's read is
not interrupted by it), and its statement is stopped with ``KILL QUERY`` before the interruption goes
on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tibackup.dump.config import Connection
from tibackup.dump.conn import DB, Row
from tibackup.errors import DatabaseError
from tibackup.load.config import LoadConfig

log = logging.getLogger("tibackup.load")


class RunningStatements:
    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self._ids: dict[int, tuple[DB, int]] = {}  # session index → its connection, the server's id

    def remember(self, index: int, db: DB) -> None:
        """Session ``index`` runs its statements on ``db`` (its id is asked once per connection)."""
        known = self._ids.get(index)
        if known is None or known[0] is not db:
            self._ids[index] = (db, int(db.scalar_text("SELECT CONNECTION_ID()") or 0))

    def stop(self, threads: list[threading.Thread], work: queue.Queue[Any] | None = None, rounds: int = 60) -> None:
        """Stop every session's statement until the sessions (``threads``, which skip what is queued
        once the load's stop is set) have ended; each gets its None on ``work`` as soon as there is
        room. A session between two statements may start one more: the next round stops it."""
        ends = len(threads) if work is not None else 0

        def hand_out_ends() -> None:
            nonlocal ends
            while ends and work is not None:
                try:
                    work.put_nowait(None)
                    ends -= 1
                except queue.Full:
                    break

        def ids() -> list[int]:
            return [cid for _, cid in list(self._ids.values())]

        stop_statements(self.config.connection, self.config.params, ids, joined(threads), rounds, hand_out_ends)


def stop_statements(
    connection: Connection,
    params: tuple[tuple[str, str], ...],
    ids: Callable[[], Iterable[int]],
    ended: Callable[[float], bool],
    rounds: int = 60,
    each_round: Callable[[], None] = lambda: None,
) -> None:
    """``KILL QUERY`` each connection of ``ids`` from a connection of its own, round after round, until
    ``ended`` (which waits up to the seconds it is given) says the statements have ended; at most
    ``rounds`` rounds of half a second."""
    try:
        killer: DB | None = DB(connection, params)
    except DatabaseError as exc:  # the server is unreachable: the sessions end with their statement
        log.debug("could not stop the running statements: %s", exc.message)
        killer = None
    try:
        for _ in range(rounds):
            if killer is not None:
                _kill(killer, ids())
            each_round()
            if ended(0.5):
                return
    finally:
        if killer is not None:
            killer.close()


def joined(threads: list[threading.Thread]) -> Callable[[float], bool]:
    """``stop_statements``' ``ended`` for sessions that are threads: they have all ended."""

    def ended(timeout: float) -> bool:
        for t in threads:
            t.join(timeout=timeout)
        return not any(t.is_alive() for t in threads)

    return ended


def _kill(killer: DB, ids: Iterable[int]) -> None:
    for cid in sorted({cid for cid in ids if cid}):
        try:
            killer.execute(f"KILL QUERY {cid}", "stopping the load's statements")
        except DatabaseError:
            continue  # that connection has gone already


T = TypeVar("T")


class MainSession(DB):
    """The load's main session, whose every statement an interruption stops (module docstring): its
    statements run on one thread of its own, started with the first, while the caller waits."""

    def __init__(self, conn: Connection, params: tuple[tuple[str, str], ...] = ()) -> None:
        self._id = 0  # the server's id of this connection; 0 while connecting (statements run directly)
        self._params = params
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._running = threading.Event()  # set while a statement runs on the worker
        super().__init__(conn, params)
        self._id = int(self.scalar_text("SELECT CONNECTION_ID()") or 0)

    def execute(self, sql: str, doing: str = "") -> None:
        self._stoppable(super().execute, sql, doing)

    def execute_bytes(self, sql: bytes, doing: str = "") -> int:
        return self._stoppable(super().execute_bytes, sql, doing)

    def query(self, sql: str, doing: str = "") -> list[Row]:  # query_text, scalar, scalar_text too
        return self._stoppable(super().query, sql, doing)

    def close(self) -> None:
        if self._worker is not None:
            self._calls.put(None)
        if not self._running.is_set():  # never under a statement still running (stopping it failed)
            super().close()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            call()

    def _stoppable(self, call: Callable[[T, str], Any], sql: T, doing: str) -> Any:
        if not self._id:
            return call(sql, doing)
        if self._worker is None:
            self._worker = threading.Thread(target=self._serve, name="tibackup-load-main", daemon=True)
            self._worker.start()
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append((True, call(sql, doing)))
            except BaseException as exc:
                outcome.append((False, exc))
            finally:
                self._running.clear()
                done.set()

        self._running.set()
        self._calls.put(run)
        try:
            done.wait()
        except KeyboardInterrupt:
            stop_statements(self.conn_info, self._params, lambda: [self._id], done.wait)
            raise
        ok, value = outcome[0]
        if not ok:
            raise value
        return value
