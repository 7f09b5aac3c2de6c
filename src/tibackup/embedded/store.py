"""The embedded runtime's state: one SQLite file under the state directory.

It plays the API server's part for one machine: resources (Backup, BackupSchedule) with uid,
resourceVersion and creationTimestamp; Secrets; events; the GC life time records of running backups; and
the pid of the process running each Backup. Several processes share it at once (the controller, its
backup children, CLI commands): WAL mode, a busy timeout, and short write transactions
(``BEGIN IMMEDIATE``). Status writes replace only ``status`` and spec writes (``apply``) keep it, so the
two never overwrite each other, as with Kubernetes' status subresource.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tibackup.embedded.paths import DB_FILE, ensure_private_dir
from tibackup.embedded.selector import Selector
from tibackup.embedded.statedb import connect, translated
from tibackup.errors import TibackupError
from tibackup.manager.secrets import secret_names
from tibackup.resources import (
    MAX_OBJECT_BYTES,
    BackupSpec,
    Resource,
    check_object_size,
    parse_resource,
    rfc3339,
    to_dict,
    validate_meta,
    validate_name,
    validate_namespace,
)

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
KIND_BACKUP = "Backup"
KIND_SCHEDULE = "BackupSchedule"
_SHORT = {KIND_BACKUP: "bk", KIND_SCHEDULE: "bks"}  # the short name of each kind; Restores: rt


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


class UnreadableError(TibackupError):
    """A stored resource above the object limit (only an older tibackup could store one)."""

    exit_code = 1
    reason = "Unreadable"


# Such a row is never parsed (an alias bomb stored by an older version took minutes and gigabytes):
# its document reads as NULL.
_DOCUMENT = f"CASE WHEN length(document) > {MAX_OBJECT_BYTES} THEN NULL ELSE document END"


def _now() -> datetime:
    return datetime.now(UTC)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Store:
    """One connection to the state database; make one per thread."""

    def __init__(self, state_dir: Path, read_only: bool = False) -> None:
        """``read_only``: the caller only reads, and would rather see the state than an error when the
        disk under it is full (see ``statedb``)."""
        with translated(Path(state_dir)):
            self.state_dir = ensure_private_dir(Path(state_dir))
        self.path = self.state_dir / DB_FILE
        self.unreadable: set[tuple[str, str, str]] = set()  # (kind, namespace, name) left out of lists
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

    # ----------------------------------------------------------------------------- resources
    def get(self, kind: str, namespace: str, name: str) -> Resource | None:
        """The resource, None when there is none; UnreadableError for a row too large to read."""
        row = self.db.execute(
            f"SELECT {_DOCUMENT}, length(document) FROM resources WHERE kind = ? AND namespace = ? AND name = ?",
            (kind, namespace, name),
        ).fetchone()
        if row is not None and row[0] is None:
            raise UnreadableError(
                f'{kind.lower()} "{name}" in namespace "{namespace}" is stored as {row[1] / 2**20:.0f} MiB, '
                f"more than a resource may hold (an older tibackup accepted it): remove it with "
                f"`tibackup delete {_SHORT.get(kind, 'rt')} {name} -n {namespace}`"
            )
        return parse_resource(json.loads(row[0])) if row else None

    def list_resources(
        self, kind: str, namespace: str | None = None, selector: Selector | None = None
    ) -> list[Any]:
        """Resources of ``kind`` (all namespaces when ``namespace`` is None), by namespace and name."""
        sql = f"SELECT labels, {_DOCUMENT}, namespace, name FROM resources WHERE kind = ?"
        args: list[Any] = [kind]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        out = []
        for labels, document, ns, name in self.db.execute(sql + " ORDER BY namespace, name", args).fetchall():
            if selector is None or selector.matches(json.loads(labels)):
                if document is None:
                    self.unreadable.add((kind, ns, name))  # left out: see get()
                    continue
                out.append(parse_resource(json.loads(document)))
        return out

    def create(self, resource: Resource, now: datetime | None = None) -> Resource:
        """Store a new resource; raises ConflictError when the name is taken."""
        with self.tx():
            if self._row(resource) is not None:
                raise ConflictError(f"{_ref(resource)} already exists")
            return self._insert(resource, now or _now())

    def apply(self, resource: Resource, now: datetime | None = None) -> tuple[Resource, str]:
        """Create, or update spec/labels/annotations of, a resource: ``created``/``configured``/``unchanged``.

        Status, uid and creationTimestamp of an existing object are kept."""
        with self.tx():
            row = self._row(resource)
            if row is None:
                # As the API server: what the writer sent as status (say, a copy of `get -o yaml`) is
                # dropped, and uid, creationTimestamp, resourceVersion, generation are the server's own.
                fresh = resource.model_copy(update={"status": type(resource.status)()})
                return self._insert(fresh, now or _now()), "created"
            current = parse_resource(json.loads(row[0]))
            if current.metadata.deletion_timestamp is not None:
                raise ConflictError(f"{_ref(resource)} is being deleted; apply it again once it is gone")
            new_meta = resource.metadata
            same = (
                to_dict(current.spec) == to_dict(resource.spec)
                and (current.metadata.labels or {}) == (new_meta.labels or {})
                and (current.metadata.annotations or {}) == (new_meta.annotations or {})
            )
            if same:
                return current, "unchanged"
            generation = (current.metadata.generation or 1) + (
                to_dict(current.spec) != to_dict(resource.spec)
            )
            meta = current.metadata.model_copy(
                update={
                    "labels": new_meta.labels,
                    "annotations": new_meta.annotations,
                    "generation": generation,
                }
            )
            if new_meta.owner_references:
                meta.owner_references = new_meta.owner_references
            updated = current.model_copy(update={"spec": resource.spec, "metadata": meta})
            return self._write(updated), "configured"

    def update_status(self, resource: Resource) -> Resource | None:
        """Replace the stored object's status with ``resource.status``; None when it no longer exists."""
        with self.tx():
            row = self._row(resource)
            if row is None:
                return None
            current = parse_resource(json.loads(row[0]))
            return self._write(current.model_copy(update={"status": resource.status}))

    def mark_deleted(self, resource: Resource, now: datetime | None = None) -> Resource | None:
        """Set ``metadata.deletionTimestamp`` (once): the object is being deleted."""
        with self.tx():
            row = self._row(resource)
            if row is None:
                return None
            current = parse_resource(json.loads(row[0]))
            if current.metadata.deletion_timestamp is not None:
                return current
            meta = current.metadata.model_copy(update={"deletion_timestamp": now or _now()})
            return self._write(current.model_copy(update={"metadata": meta}))

    def remove(self, resource: Resource) -> bool:
        """Delete the object, its events, GC record and run record."""
        return self.remove_named(
            resource.kind, resource.metadata.namespace or "default", resource.metadata.name
        )

    def remove_named(self, kind: str, ns: str, name: str) -> bool:
        """``remove`` by name (also for a row that cannot be read, see ``get``)."""
        with self.tx() as db:
            gone = db.execute(
                "DELETE FROM resources WHERE kind = ? AND namespace = ? AND name = ?", (kind, ns, name)
            ).rowcount
            db.execute("DELETE FROM events WHERE kind = ? AND namespace = ? AND name = ?", (kind, ns, name))
            if kind == KIND_BACKUP:
                db.execute("DELETE FROM runs WHERE namespace = ? AND name = ?", (ns, name))
                db.execute("DELETE FROM gc_records WHERE namespace = ? AND name = ?", (ns, name))
        return bool(gone)

    def _row(self, resource: Resource) -> tuple[str] | None:
        meta = resource.metadata
        row: tuple[str] | None = self.db.execute(
            "SELECT document FROM resources WHERE kind = ? AND namespace = ? AND name = ?",
            (resource.kind, meta.namespace or "default", meta.name),
        ).fetchone()
        return row

    def _insert(self, resource: Resource, now: datetime) -> Resource:
        meta = resource.metadata.model_copy(
            update={
                "namespace": resource.metadata.namespace or "default",
                "uid": str(uuid.uuid4()),
                "creation_timestamp": now,
                "resource_version": "0",
                "generation": 1,
                "deletion_timestamp": None,
            }
        )
        return self._write(resource.model_copy(update={"metadata": meta}), insert=True)

    def _write(self, resource: Resource, insert: bool = False) -> Resource:
        meta = resource.metadata
        validate_meta(meta)  # every stored name may later become a folder name (staging)
        version = int(meta.resource_version or 0) + 1
        resource = resource.model_copy(
            update={"metadata": meta.model_copy(update={"resource_version": str(version)})}
        )
        meta = resource.metadata
        assert meta.creation_timestamp is not None and meta.namespace is not None
        document = json.dumps(to_dict(resource))
        check_object_size(resource, document)  # no row may make the state slow to read
        values = (
            meta.uid or "",
            version,
            rfc3339(meta.creation_timestamp),
            json.dumps(meta.labels or {}),
            document,
            resource.kind,
            meta.namespace,
            meta.name,
        )
        if insert:
            self.db.execute(
                "INSERT INTO resources (uid, resource_version, creation_timestamp, labels, document, kind,"
                " namespace, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        else:
            self.db.execute(
                "UPDATE resources SET uid = ?, resource_version = ?, creation_timestamp = ?, labels = ?,"
                " document = ? WHERE kind = ? AND namespace = ? AND name = ?",
                values,
            )
        return resource

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
                (namespace, name, json.dumps(data), rfc3339(_now())),
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
            SecretInfo(ns, name, len(json.loads(data)), _time(created)) for ns, name, data, created in rows
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

    def backup_secret_values(self, namespace: str, name: str) -> set[str]:
        """The values a Backup's messages can contain: those of the Secrets it names (a multi-line value
        also line by line, as logs are read by line). Every value when the Backup is gone: never less."""
        backup = self.get(KIND_BACKUP, namespace, name)
        if backup is None or not isinstance(backup.spec, BackupSpec):
            return self.secret_values()
        values: set[str] = set()
        for secret in secret_names(backup.spec):
            for value in (self.get_secret(namespace, secret) or {}).values():
                values.add(value)
                if "\n" in value:
                    values.update(line.strip() for line in value.splitlines() if line.strip())
        return values

    # ----------------------------------------------------------------------------- events
    def add_event(
        self, resource: Resource, type_: str, reason: str, message: str, now: datetime | None = None
    ) -> None:
        """Record an event; a repeat of the last one of the object is counted, not stored again."""
        meta = resource.metadata
        ns, when = meta.namespace or "default", rfc3339(now or _now())
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
        return [Event(t, r, m, _time(f), _time(la), c) for t, r, m, f, la, c in rows]

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
                (namespace, name, uid, pid, pid_started, rfc3339(_now())),
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
    return RunRecord(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]), _time(row[5]))


def _ref(resource: Resource) -> str:
    meta = resource.metadata
    return f'{resource.kind.lower()} "{meta.name}" in namespace "{meta.namespace or "default"}"'
