"""The embedded state database's connection, and its tables beside the resources: Secrets, events, the
GC life time records of running backups, and the pid of the process running each Backup or Restore.

``Store`` (``store.py``) adds the resources. Several processes share the database at once (the
controller, its children, CLI commands): WAL mode, a busy timeout, and short write transactions
(``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tibackup.embedded.paths import DB_FILE, ensure_private_dir
from tibackup.embedded.statedb import connect, translated
from tibackup.errors import TibackupError
from tibackup.resources import Resource, rfc3339, validate_name, validate_namespace

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, resource_version INTEGER NOT NULL, creation_timestamp TEXT NOT NULL,
    labels TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS secrets (
    namespace TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, creation_timestamp TEXT NOT NULL,
    PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
    first_time TEXT NOT NULL, last_time TEXT NOT NULL, count INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_object ON events (kind, namespace, name);
CREATE TABLE IF NOT EXISTS gc_records (
    namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (namespace, name, uid));
CREATE TABLE IF NOT EXISTS runs (
    namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL, pid INTEGER NOT NULL,
    pid_started INTEGER NOT NULL, started TEXT NOT NULL,
    PRIMARY KEY (namespace, name));
"""


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str
    first_time: datetime
    last_time: datetime
    count: int


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown of a Secret: never its values."""

    namespace: str
    name: str
    keys: int
    created: datetime


@dataclass(frozen=True)
class RunRecord:
    namespace: str
    name: str
    uid: str
    pid: int
    pid_started: int
    started: datetime


class ConflictError(TibackupError):
    exit_code = 1
    reason = "Conflict"


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class StateRecords:
    """One connection to the state database (with its Secrets, events, GC and run records); one per thread."""

    def __init__(self, state_dir: Path, read_only: bool = False) -> None:
        """``read_only``: the caller only reads, and would rather see the state than an error when the
        disk under it is full (see ``statedb``)."""
        with translated(Path(state_dir)):
            self.state_dir = ensure_private_dir(Path(state_dir))
        self.path = self.state_dir / DB_FILE
        old_umask = os.umask(0o077)  # the database, its WAL and shared-memory files: owner only
        try:
            self.db = connect(self.path, SCHEMA, read_only)
        finally:
            os.umask(old_umask)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                file = Path(f"{self.path}{suffix}")
                if file.stat().st_mode & 0o777 != 0o600:
                    file.chmod(0o600)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, taken at once so concurrent writers queue instead of deadlocking.

        A full disk under the state directory raises StateDirError (nothing of the transaction stays)."""
        with translated(self.state_dir):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    # ----------------------------------------------------------------------------- secrets
    def put_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Create a Secret; raises ConflictError when it exists (as ``kubectl create`` does)."""
        validate_namespace(namespace)
        validate_name(name, "secret name")
        with self.tx() as db:
            if db.execute(
                "SELECT 1 FROM secrets WHERE namespace = ? AND name = ?", (namespace, name)
            ).fetchone():
                raise ConflictError(
                    f'secret "{name}" already exists in namespace "{namespace}"; delete it first to replace it'
                )
            db.execute(
                "INSERT INTO secrets (namespace, name, data, creation_timestamp) VALUES (?, ?, ?, ?)",
                (namespace, name, json.dumps(data), rfc3339(utc_now())),
            )

    def get_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        row = self.db.execute(
            "SELECT data FROM secrets WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def list_secrets(self, namespace: str | None = None) -> list[SecretInfo]:
        sql = "SELECT namespace, name, data, creation_timestamp FROM secrets"
        args: tuple[str, ...] = ()
        if namespace is not None:
            sql += " WHERE namespace = ?"
            args = (namespace,)
        rows = self.db.execute(sql + " ORDER BY namespace, name", args).fetchall()
        return [
            SecretInfo(ns, name, len(json.loads(data)), parse_time(created))
            for ns, name, data, created in rows
        ]

    def delete_secret(self, namespace: str, name: str) -> bool:
        with self.tx() as db:
            return bool(
                db.execute("DELETE FROM secrets WHERE namespace = ? AND name = ?", (namespace, name)).rowcount
            )

    def secret_values(self) -> set[str]:
        """Every stored secret value (to keep them out of logs, events and status)."""
        values: set[str] = set()
        for (data,) in self.db.execute("SELECT data FROM secrets").fetchall():
            values.update(str(v) for v in json.loads(data).values())
        return values

    # ----------------------------------------------------------------------------- events
    def add_event(
        self, resource: Resource, type_: str, reason: str, message: str, now: datetime | None = None
    ) -> None:
        """Record an event; a repeat of the last one of the object is counted, not stored again."""
        meta = resource.metadata
        ns, when = meta.namespace or "default", rfc3339(now or utc_now())
        with self.tx() as db:
            last = db.execute(
                "SELECT id, type, reason, message FROM events WHERE kind = ? AND namespace = ? AND name = ?"
                " ORDER BY id DESC LIMIT 1",
                (resource.kind, ns, meta.name),
            ).fetchone()
            if last is not None and tuple(last[1:]) == (type_, reason, message):
                db.execute("UPDATE events SET count = count + 1, last_time = ? WHERE id = ?", (when, last[0]))
                return
            db.execute(
                "INSERT INTO events (kind, namespace, name, uid, type, reason, message, first_time, last_time,"
                " count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (resource.kind, ns, meta.name, meta.uid or "", type_, reason, message, when, when),
            )

    def events(self, kind: str, namespace: str, name: str) -> list[Event]:
        rows = self.db.execute(
            "SELECT type, reason, message, first_time, last_time, count FROM events"
            " WHERE kind = ? AND namespace = ? AND name = ? ORDER BY id",
            (kind, namespace, name),
        ).fetchall()
        return [Event(t, r, m, parse_time(f), parse_time(la), c) for t, r, m, f, la, c in rows]

    # ----------------------------------------------------------------------------- GC records
    def save_gc_record(self, namespace: str, name: str, uid: str, record: dict[str, Any] | None) -> None:
        with self.tx() as db:
            if record is None:
                db.execute(
                    "DELETE FROM gc_records WHERE namespace = ? AND name = ? AND uid = ?",
                    (namespace, name, uid),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO gc_records (namespace, name, uid, record) VALUES (?, ?, ?, ?)",
                    (namespace, name, uid, json.dumps(record)),
                )

    def load_gc_record(self, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT record FROM gc_records WHERE namespace = ? AND name = ? AND uid = ?",
            (namespace, name, uid),
        ).fetchone()
        return dict(json.loads(row[0])) if row else None

    # ----------------------------------------------------------------------------- runs
    def claim_run(self, namespace: str, name: str, uid: str, pid: int, pid_started: int) -> RunRecord | None:
        """Record ``pid`` as the process running the Backup, unless a run is recorded already (which is
        returned instead, for the caller to check whether it is alive)."""
        with self.tx() as db:
            row = db.execute(
                "SELECT namespace, name, uid, pid, pid_started, started FROM runs"
                " WHERE namespace = ? AND name = ?",
                (namespace, name),
            ).fetchone()
            if row is not None:
                return _run_record(row)
            db.execute(
                "INSERT INTO runs (namespace, name, uid, pid, pid_started, started) VALUES (?, ?, ?, ?, ?, ?)",
                (namespace, name, uid, pid, pid_started, rfc3339(utc_now())),
            )
            return None

    def set_run_pid(self, namespace: str, name: str, pid: int, pid_started: int) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET pid = ?, pid_started = ? WHERE namespace = ? AND name = ?",
                (pid, pid_started, namespace, name),
            )

    def clear_run(self, namespace: str, name: str, pid: int | None = None) -> None:
        """Forget the run record (only ``pid``'s, when given)."""
        with self.tx() as db:
            if pid is None:
                db.execute("DELETE FROM runs WHERE namespace = ? AND name = ?", (namespace, name))
            else:
                db.execute(
                    "DELETE FROM runs WHERE namespace = ? AND name = ? AND pid = ?", (namespace, name, pid)
                )

    def runs(self) -> list[RunRecord]:
        rows = self.db.execute(
            "SELECT namespace, name, uid, pid, pid_started, started FROM runs ORDER BY started"
        ).fetchall()
        return [_run_record(row) for row in rows]


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]), parse_time(row[5]))
