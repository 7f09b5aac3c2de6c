"""The backup manager's test harness: an in-memory BackupRuntime, a file-backed one that survives a
killed process, a storage wrapper that fails on demand, and a Backup shaped like the seed's examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tibackup.errors import NotFoundError
from tibackup.manager import remote
from tibackup.resources import Backup
from tibackup.storage import S3Options
from tibackup.storage.base import ObjectWriter, Storage

NS = "test1"
DB_SECRET, S3_SECRET = "backup-demo1-tidb-secret", "s3-secret"
TABLES = ["t1", "t2"]


class MemoryRuntime:
    """A BackupRuntime in memory; ``on_status`` lets a test look inside a run at each phase change."""

    def __init__(self, staging_root: Path) -> None:
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []
        self.gc_records: dict[str, dict[str, Any]] = {}
        self.staging_root = staging_root
        self.on_status: Callable[[Backup], None] | None = None

    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        if (namespace, name) not in self.secrets:
            raise NotFoundError(f"Secret {namespace}/{name} not found")
        return dict(self.secrets[(namespace, name)])

    def save_status(self, backup: Backup) -> None:
        self.statuses.append(backup.status.model_dump(mode="json", exclude_none=True))
        if self.on_status:
            self.on_status(backup)

    def event(self, backup: Backup, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        if record is None:
            self.gc_records.pop(backup.metadata.name, None)
        else:
            self.gc_records[backup.metadata.name] = json.loads(json.dumps(record))

    def load_gc_record(self, backup: Backup) -> dict[str, Any] | None:
        return self.gc_records.get(backup.metadata.name)

    def staging_dir(self, backup: Backup) -> Path:
        return self.staging_root / (backup.metadata.namespace or "default") / backup.metadata.name

    def phases(self) -> list[str]:
        return [s.get("phase", "") for s in self.statuses]

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


class FileRuntime(MemoryRuntime):
    """A MemoryRuntime that keeps its state in a JSON file, so it survives a killed process."""

    def __init__(self, staging_root: Path, state: Path) -> None:
        super().__init__(staging_root)
        self.state = state

    def _write(self) -> None:
        doc = {
            "secrets": [[ns, name, data] for (ns, name), data in self.secrets.items()],
            "statuses": self.statuses,
            "gc_records": self.gc_records,
        }
        temp = self.state.with_suffix(".tmp")
        temp.write_text(json.dumps(doc))
        temp.replace(self.state)

    @classmethod
    def load(cls, staging_root: Path, state: Path) -> FileRuntime:
        rt = cls(staging_root, state)
        doc = json.loads(state.read_text())
        rt.secrets = {(ns, name): data for ns, name, data in doc["secrets"]}
        rt.statuses, rt.gc_records = doc["statuses"], doc["gc_records"]
        return rt

    def save_status(self, backup: Backup) -> None:
        super().save_status(backup)
        self._write()

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        super().save_gc_record(backup, record)
        self._write()


# Run in a child process by the kill test: a backup whose every file takes 60 s to start.
CHILD_SCRIPT = """
import sys, time
from pathlib import Path
from tests.integration.managerutil import FailingStorage, FileRuntime
from tibackup.manager import remote, run_backup
from tibackup.resources import Backup

staging, state, spec = (Path(a) for a in sys.argv[1:4])
real = remote.open_backup_storage
remote.open_backup_storage = lambda o: FailingStorage(real(o), lambda name: time.sleep(60))
run_backup(Backup.model_validate_json(spec.read_text()), FileRuntime.load(staging, state))
"""


class FailingStorage:
    """Wraps a storage; ``fail(name)`` decides, at each ``create``, whether to raise instead."""

    def __init__(self, inner: Storage, fail: Callable[[str], BaseException | None]) -> None:
        self.inner, self.fail = inner, fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, name: str) -> ObjectWriter:
        error = self.fail(name)
        if error is not None:
            raise error
        return self.inner.create(name)


def gc_value(mariadb: MariaDBServer) -> str:
    return str(
        mariadb.execute("SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'")[0][
            0
        ]
    )


def make_backup(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    database: str,
    *,
    name: str = "demo1-backup-s3",
    mode: str | None = None,
    user: str | None = None,
    options: list[str] | None = None,
    clean_policy: str = "Retain",
) -> Backup:
    doc: dict[str, Any] = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "from": {
                "host": mariadb.host,
                "port": mariadb.port,
                "user": user or mariadb.user,
                "secretName": DB_SECRET,
            },
            "s3": {
                "provider": "ceph",
                "secretName": S3_SECRET,
                "endpoint": s3_server.endpoint,
                "region": s3_server.region,
                "bucket": bucket,
                "prefix": "nightly/demo1",
            },
            "dumpling": {"options": options or ["--threads=2", "--rows=2000"]},
            "tableFilter": [f"{database}.*"],
            "cleanPolicy": clean_policy,
        },
    }
    if mode == "staged":
        doc["spec"]["storageSize"] = "10Gi"
    elif mode == "direct-annotated":
        doc["spec"]["storageSize"] = "10Gi"
        doc["metadata"]["annotations"] = {"tibackup.pingcap.com/mode": "direct"}
    return Backup.model_validate(doc)


def s3_prefix(backup: Backup) -> str:
    path = backup.status.backup_path or ""
    return path.split("/", 3)[3]


def fetch(s3_server: S3Server, bucket: str, prefix: str, folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for key in s3_server.list_keys(bucket, prefix):
        data = s3_server.get_bytes(bucket, key)
        (folder / key[len(prefix) :]).write_bytes(data)
        sizes[key[len(prefix) :]] = len(data)
    return sizes


def wrap_storage(monkeypatch: pytest.MonkeyPatch, fail: Callable[[str], BaseException | None]) -> None:
    real = remote.open_backup_storage

    def opener(options: S3Options) -> Storage:
        return FailingStorage(real(options), fail)  # type: ignore[return-value]

    monkeypatch.setattr(remote, "open_backup_storage", opener)
