"""Stopping a load now: Ctrl-C or SIGTERM ends the sessions' statements instead of waiting for them.

A session waiting on a lock someone else holds (``LOCK TABLES``, a long ``ALTER``, a transaction left
open) would otherwise keep the load — and the Ctrl-C — waiting for as long as the lock is held. Each
session's server connection id is known (asked once per connection); an interruption runs ``KILL
QUERY`` on each from a connection of its own, round after round until the sessions have ended. Their
open transactions roll back; what was committed (rows and checkpoint rows together) stays.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from tibackup.dump.conn import DB
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

    def stop(self, threads: list[threading.Thread], work: queue.Queue[Any], rounds: int = 60) -> None:
        """Stop every session's statement until the sessions (``threads``, which skip what is queued
        once the load's stop is set) have ended; each gets its None on ``work`` as soon as there is
        room. A session between two statements may start one more: the next round stops it."""
        ends = len(threads)
        try:
            killer: DB | None = DB(self.config.connection, self.config.params)
        except DatabaseError as exc:  # the server is unreachable: the sessions end with their statement
            log.debug("could not stop the running statements: %s", exc.message)
            killer = None
        try:
            for _ in range(rounds):
                if killer is not None:
                    self._kill(killer)
                while ends:
                    try:
                        work.put_nowait(None)
                        ends -= 1
                    except queue.Full:
                        break
                for t in threads:
                    t.join(timeout=0.5)
                if not any(t.is_alive() for t in threads):
                    return
        finally:
            if killer is not None:
                killer.close()

    def _kill(self, killer: DB) -> None:
        for cid in sorted({cid for _, cid in list(self._ids.values()) if cid}):
            try:
                killer.execute(f"KILL QUERY {cid}", "stopping the load's statements")
            except DatabaseError:
                continue  # that connection has gone already
