"""Making every worker read one point in time (Dumpling's --consistency).

flush     FLUSH TABLES WITH READ LOCK on the main session; each worker opens a consistent-snapshot
          transaction; the binlog position is read; UNLOCK TABLES. Where FTWRL is refused (no RELOAD,
          as on managed MySQL), fall back to lock with a warning.
lock      LOCK TABLES … READ on every table to dump, held by the main session until the dump ends.
snapshot  TiDB: every session sets tidb_snapshot to one TSO.
none      nothing: each worker sees whatever is there when it reads.
auto      snapshot on TiDB, flush elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tibackup.dump import tidb
from tibackup.dump.catalog import Table
from tibackup.dump.config import Consistency
from tibackup.dump.conn import DB, ServerInfo, ServerType, quote_ident
from tibackup.errors import DatabaseError, UsageError

log = logging.getLogger("tibackup.dump")

_FTWRL_REFUSED = {1045, 1227, 1044, 1142}


def resolve(requested: Consistency, server: ServerInfo) -> Consistency:
    if requested is Consistency.AUTO:
        return Consistency.SNAPSHOT if server.type is ServerType.TIDB else Consistency.FLUSH
    if requested is Consistency.SNAPSHOT and server.type is not ServerType.TIDB:
        raise UsageError(
            f"--consistency snapshot needs TiDB, but the server is {server.type.value}: use flush, lock or auto"
        )
    return requested


def start_snapshot_transaction(worker: DB) -> None:
    worker.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    worker.execute(
        "START TRANSACTION /*!40108 WITH CONSISTENT SNAPSHOT */", "starting a snapshot transaction"
    )


class ConsistencyGuard:
    """Holds whatever lock the chosen consistency needs, from ``begin`` until ``release``."""

    def __init__(self, main: DB, mode: Consistency, server: ServerInfo, snapshot: str = "") -> None:
        self.main, self.mode, self.server = main, mode, server
        self.snapshot = snapshot
        if snapshot and mode is not Consistency.SNAPSHOT:  # Dumpling ignores it too, without a word
            log.warning(
                "--snapshot %s is ignored: it is only used with --consistency snapshot (TiDB), and this "
                "dump uses --consistency %s on %s",
                snapshot, mode.value, server.type.value,
            )  # fmt: skip
        self._locked = False

    def begin(self, tables: Sequence[Table]) -> None:
        if self.mode is Consistency.FLUSH:
            try:
                self.main.execute("FLUSH TABLES WITH READ LOCK", "FLUSH TABLES WITH READ LOCK")
                self._locked = True
                return
            except DatabaseError as exc:
                if exc.code not in _FTWRL_REFUSED:
                    raise
                log.warning(
                    "FLUSH TABLES WITH READ LOCK was refused (%s); falling back to --consistency lock. "
                    "Grant RELOAD to keep writes unblocked for most of the dump.",
                    exc.message,
                )
                self.mode = Consistency.LOCK
        if self.mode is Consistency.LOCK:
            base = [t for t in tables if not t.is_view and not t.is_sequence]
            if base:
                names = ", ".join(f"{quote_ident(t.schema)}.{quote_ident(t.name)} READ" for t in base)
                self.main.execute(f"LOCK TABLES {names}", "LOCK TABLES … READ")
                self._locked = True
        elif self.mode is Consistency.SNAPSHOT:
            if not self.snapshot:
                self.snapshot = tidb.current_tso(self.main)
            tidb.set_snapshot(self.main, self.snapshot)

    def prepare_worker(self, worker: DB) -> None:
        if self.mode is Consistency.SNAPSHOT:
            tidb.set_snapshot(worker, self.snapshot)
        elif self.mode in (Consistency.FLUSH, Consistency.LOCK):
            start_snapshot_transaction(worker)

    def after_workers_ready(self) -> None:
        """With flush, the lock is only needed until every worker holds its snapshot."""
        if self.mode is Consistency.FLUSH and self._locked:
            self.main.execute("UNLOCK TABLES")
            self._locked = False

    def release(self) -> None:
        if self._locked:
            try:
                self.main.execute("UNLOCK TABLES")
            except DatabaseError as exc:
                log.warning("UNLOCK TABLES failed: %s (the lock ends with the session anyway)", exc.message)
            self._locked = False
