"""The embedded runtime's state: one SQLite file under the state directory.

It plays the API server's part for one machine: resources (Backup, BackupSchedule, Restore) with uid,
resourceVersion and creationTimestamp, here; Secrets, events, the GC life time records of running
backups and the pid of the process running each Backup, in ``records.py``. Several processes share it at once (the controller, its
backup children, CLI commands): WAL mode, a busy timeout, and short write transactions
(``BEGIN IMMEDIATE``). Status writes replace only ``status`` and spec writes (``apply``) keep it, so the
two never overwrite each other, as with Kubernetes' status subresource.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from tibackup.embedded.records import (
    ConflictError,
    Event,
    RunRecord,
    SecretInfo,
    StateRecords,
    utc_now,
)
from tibackup.embedded.selector import Selector
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
)

KIND_BACKUP = "Backup"
KIND_SCHEDULE = "BackupSchedule"
_SHORT = {KIND_BACKUP: "bk", KIND_SCHEDULE: "bks"}  # the short name of each kind; Restores: rt


class UnreadableError(TibackupError):
    """A stored resource above the object limit (only an older tibackup could store one)."""

    exit_code = 1
    reason = "Unreadable"


# Such a row is never parsed (an alias bomb stored by an older version took minutes and gigabytes):
# its document reads as NULL.
_DOCUMENT = f"CASE WHEN length(document) > {MAX_OBJECT_BYTES} THEN NULL ELSE document END"


class Store(StateRecords):
    """One connection to the state database, its resources beside its records (``records.py``); make
    one per thread."""

    def __init__(self, state_dir: Path, read_only: bool = False) -> None:
        super().__init__(state_dir, read_only)
        self.unreadable: set[tuple[str, str, str]] = set()  # (kind, namespace, name) left out of lists

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
            return self._insert(resource, now or utc_now())

    def apply(self, resource: Resource, now: datetime | None = None) -> tuple[Resource, str]:
        """Create, or update spec/labels/annotations of, a resource: ``created``/``configured``/``unchanged``.

        Status, uid and creationTimestamp of an existing object are kept."""
        with self.tx():
            row = self._row(resource)
            if row is None:
                # As the API server: what the writer sent as status (say, a copy of `get -o yaml`) is
                # dropped, and uid, creationTimestamp, resourceVersion, generation are the server's own.
                fresh = resource.model_copy(update={"status": type(resource.status)()})
                return self._insert(fresh, now or utc_now()), "created"
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
            meta = current.metadata.model_copy(update={"deletion_timestamp": now or utc_now()})
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


def _ref(resource: Resource) -> str:
    meta = resource.metadata
    return f'{resource.kind.lower()} "{meta.name}" in namespace "{meta.namespace or "default"}"'


__all__ = [
    "KIND_BACKUP",
    "KIND_SCHEDULE",
    "ConflictError",
    "Event",
    "RunRecord",
    "SecretInfo",
    "Store",
    "UnreadableError",
]
