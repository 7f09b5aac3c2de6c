"""SPEC §4c on the real MariaDB and S3 servers: every Backup writes into a folder of its own, claimed
before the first byte, and is ``Complete`` only when every object it uploaded is still what it uploaded.

* 20 Backups of two databases, started at once in the same second on one bucket/prefix: 20 folders,
  each holding exactly its own database's files (also when the server ignores ``If-None-Match``).
* A folder that already holds files is never written into.
* An object overwritten with other bytes of the same size before verification: ``VerifyFailed``.
* Two schedules of two databases on one bucket/prefix under ``tibackup controller``: every folder holds
  exactly its own schedule's data (see ``test_two_schedules_on_one_prefix_never_mix``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import xxhash
import yaml
from testenv import sampledata
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.managerutil import DB_SECRET, NS, S3_SECRET, MemoryRuntime, make_backup, s3_prefix
from tests.integration.test_embedded_cli import Env, backup_spec, env_fixture
from tests.integration.test_embedded_controller import backups, controller, stop, wait_for
from tibackup.control.naming import LABEL_SCHEDULE
from tibackup.embedded.store import Store
from tibackup.manager import remote, run_backup
from tibackup.manager.claim import is_claim
from tibackup.resources import Backup, Phase
from tibackup.storage import S3Options
from tibackup.storage.base import ObjectWriter, Storage

__all__ = ["env_fixture"]  # the `env` fixture, shared with the CLI tests
pytestmark = pytest.mark.integration
PREFIX = "nightly/demo1"


@pytest.fixture()
def two_databases(mariadb: MariaDBServer, fresh_db: str) -> Iterator[dict[str, int]]:
    """Two databases with a table of the same name and different rows: {database: rows}."""
    other = f"{fresh_db[:50]}_other"
    mariadb.create_database(other)
    rows = {fresh_db: 3000, other: 1700}
    for db, count in rows.items():
        mariadb.execute(f"CREATE TABLE `{db}`.t1 (id INT PRIMARY KEY, origin VARCHAR(80))")
        mariadb.execute(
            f"INSERT INTO `{db}`.t1 SELECT seq, CONCAT('{db} row ', seq) FROM seq_1_to_{count}", database=db
        )
    try:
        yield rows
    finally:
        mariadb.drop_database(other)


def new_runtime(root: Path, mariadb: MariaDBServer, s3_server: S3Server) -> MemoryRuntime:
    rt = MemoryRuntime(root)
    rt.secrets[(NS, DB_SECRET)] = {"password": mariadb.password}
    rt.secrets[(NS, S3_SECRET)] = {"access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    return rt


class IgnoresIfNoneMatch:
    """An S3 server that takes ``If-None-Match: *`` and overwrites anyway (the claim must survive it)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_if_absent(self, name: str, data: bytes) -> str | None:
        self.inner.put(name, data)
        return next(iter(self.inner.list(name))).etag


def assert_folder_holds_exactly(
    s3_server: S3Server, bucket: str, backup: Backup, database: str, rows: int
) -> None:
    """The folder: its claim, metadata, the manifest, and the manifest's files of ``database`` with the
    manifest's xxh128 — nothing of another backup."""
    prefix = s3_prefix(backup)
    keys = {key[len(prefix) :] for key in s3_server.list_keys(bucket, prefix)}
    manifest = json.loads(s3_server.get_bytes(bucket, prefix + "tibackup-manifest.json"))
    files = {f["name"]: f for f in manifest["files"]}
    assert {k for k in keys if not is_claim(k)} == set(files) | {"metadata", "tibackup-manifest.json"}, (
        backup.metadata.name, sorted(keys),
    )  # fmt: skip
    assert all(name.startswith((f"{database}.", f"{database}-")) for name in files), sorted(files)
    for name, record in files.items():
        data = s3_server.get_bytes(bucket, prefix + name)
        assert xxhash.xxh3_128(data).hexdigest() == record["xxh128"], f"{prefix}{name} is not this backup's"
    assert manifest["totals"]["rows"] == rows


@pytest.mark.parametrize("server", ["honours-if-none-match", "ignores-if-none-match"])
def test_twenty_backups_at_once_get_twenty_folders_of_their_own(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    two_databases: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: str,
) -> None:
    if server == "ignores-if-none-match":
        real = remote.open_backup_storage
        monkeypatch.setattr(remote, "open_backup_storage", lambda o: IgnoresIfNoneMatch(real(o)))
    databases = list(two_databases)
    started = datetime.now(UTC).replace(microsecond=0)  # every backup starts in this same second
    jobs = [
        (
            make_backup(
                mariadb, s3_server, bucket, databases[i % 2], name=f"bk-{i}",
                mode="staged" if i % 4 == 3 else None, options=["--threads=1", "--rows=500"],
            ),
            new_runtime(tmp_path / f"staging-{i}", mariadb, s3_server),
        )
        for i in range(20)
    ]  # fmt: skip
    done: dict[str, Backup] = {}
    barrier = threading.Barrier(len(jobs))

    def run(backup: Backup, runtime: MemoryRuntime) -> None:
        barrier.wait()
        done[backup.metadata.name] = run_backup(backup, runtime, now=lambda: started)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(done) == 20
    failed = {n: b.status.conditions[-1].message for n, b in done.items() if b.status.phase != Phase.COMPLETE}
    assert not failed, failed
    paths = [b.status.backup_path or "" for b in done.values()]
    base = f"s3://{bucket}/{PREFIX}/backup-{started.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    assert len(set(paths)) == 20, sorted(paths)
    assert all(
        p == f"{base}/" or (p.startswith(f"{base}-") and p[len(base) + 1 : -1].isdigit()) for p in paths
    )
    if server == "honours-if-none-match":  # the gate lets exactly one claimant through per name
        assert set(paths) == {f"{base}/"} | {f"{base}-{n}/" for n in range(2, 21)}
    for i, (backup, _) in enumerate(jobs):
        db = databases[i % 2]
        assert_folder_holds_exactly(s3_server, bucket, done[backup.metadata.name], db, two_databases[db])


def test_a_folder_that_holds_files_is_never_written_into(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    two_databases: dict[str, int],
    tmp_path: Path,
) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    taken = f"{PREFIX}/backup-{started.strftime('%Y-%m-%dT%H:%M:%SZ')}/"
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key=taken + "left-behind.sql", Body=b"not ours")
    db = next(iter(two_databases))
    backup = make_backup(mariadb, s3_server, bucket, db)

    done = run_backup(backup, new_runtime(tmp_path, mariadb, s3_server), now=lambda: started)

    assert done.status.phase == Phase.COMPLETE, done.status.conditions[-1].message
    assert done.status.backup_path == f"s3://{bucket}/{taken.rstrip('/')}-2/"
    assert s3_server.list_keys(bucket, taken) == [taken + "left-behind.sql"]
    assert_folder_holds_exactly(s3_server, bucket, done, db, two_databases[db])


class OverwriteBeforeMetadata:
    """Another writer: just before ``metadata`` is written, it replaces a data file of the folder with
    other bytes of the same size."""

    def __init__(self, inner: Storage, options: S3Options, s3_server: S3Server, victim: str) -> None:
        self.inner, self.options, self.s3, self.victim = inner, options, s3_server, victim

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, name: str) -> ObjectWriter:
        if name == "metadata":
            key = f"{self.options.prefix}/{self.victim}"
            original = self.s3.get_bytes(self.options.bucket, key)
            forged = original.replace(b"row", b"ROW")
            assert len(forged) == len(original) and forged != original
            self.s3.client().put_object(Bucket=self.options.bucket, Key=key, Body=forged)
        return self.inner.create(name)


@pytest.mark.parametrize("mode", ["direct", "staged"])
def test_an_object_overwritten_at_the_same_size_fails_verification(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    two_databases: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    db = next(iter(two_databases))
    victim = f"{db}.t1.000000000.sql"
    real: Callable[[S3Options], Storage] = remote.open_backup_storage

    def opener(options: S3Options) -> Storage:
        storage = real(options)
        if options.prefix.startswith(f"{PREFIX}/backup-"):  # the backup folder, not the bucket's root
            return OverwriteBeforeMetadata(storage, options, s3_server, victim)  # type: ignore[return-value]
        return storage

    monkeypatch.setattr(remote, "open_backup_storage", opener)
    backup = make_backup(mariadb, s3_server, bucket, db, mode=mode, options=["--threads=1"])

    done = run_backup(backup, new_runtime(tmp_path, mariadb, s3_server))

    assert done.status.phase == Phase.FAILED
    condition = done.status.condition(Phase.FAILED)
    assert condition is not None and condition.reason == "VerifyFailed", condition
    message = condition.message or ""
    assert victim in message and "overwritten by another writer" in message and "\n" not in message


def test_two_schedules_on_one_prefix_never_mix(env: Env, tmp_path: Path) -> None:
    """Two schedules of two databases on one bucket/prefix, ticking together under ``tibackup controller``
    (two Backups at once): runs until two of their backups started in the same second (one folder got a
    ``-2``); every folder then holds exactly its own schedule's data, and every backup is Complete."""
    other = f"{env.database[:50]}_b"
    env.mariadb.create_database(other)
    try:
        conn = env.mariadb.connect()
        try:
            rows = {
                env.database: sum(sampledata.load_sample(conn, env.database, rows=200).values()),
                other: sum(sampledata.load_sample(conn, other, rows=120).values()),
            }
        finally:
            conn.close()

        def schedule(name: str, db: str, **extra: object) -> dict[str, Any]:
            s3 = {**backup_spec(env)["s3"], "prefix": "shared"}
            return {
                "apiVersion": "pingcap.com/v1alpha1",
                "kind": "BackupSchedule",
                "metadata": {"name": name, "namespace": "test1"},
                "spec": {
                    "schedule": "@every 1s",
                    "maxBackups": 1000,
                    "backupTemplate": backup_spec(env, tableFilter=[f"{db}.*"], s3=s3),
                    **extra,
                },
            }

        plan = {"sched-a": env.database, "sched-b": other}
        docs = [schedule(name, db) for name, db in plan.items()]
        assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump_all(docs)).code == 0  # created together
        store = Store(env.state)

        def finished() -> list[Backup]:
            return [b for b in backups(store) if b.status.phase in (Phase.COMPLETE, Phase.FAILED)]

        def shared_a_second() -> bool:
            done = finished()
            suffixed = any(re.search(r"Z-\d+/$", b.status.backup_path or "") for b in done)
            per_schedule = {(b.metadata.labels or {}).get(LABEL_SCHEDULE) for b in done}
            return suffixed and per_schedule == {"sched-a", "sched-b"}

        log = tmp_path / "controller.log"
        with controller(env, log, "--max-concurrent", "2") as process:
            wait_for(shared_a_second, 240, "two backups of the two schedules to start in the same second")
            paused = [schedule(name, db, pause=True) for name, db in plan.items()]
            assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump_all(paused)).code == 0
            wait_for(
                lambda: all(b.status.phase in (Phase.COMPLETE, Phase.FAILED) for b in backups(store)),
                120,
                "the running backups to finish",
            )
            assert stop(process) == 0
        done = finished()
        failed = {
            b.metadata.name: b.status.conditions[-1].message for b in done if b.status.phase != Phase.COMPLETE
        }
        assert not failed, failed
        paths = [b.status.backup_path for b in done]
        assert len(set(paths)) == len(paths), sorted(p or "" for p in paths)
        for backup in done:
            db = plan[(backup.metadata.labels or {}).get(LABEL_SCHEDULE, "")]
            assert_folder_holds_exactly(env.s3, env.bucket, backup, db, rows[db])
    finally:
        env.mariadb.drop_database(other)
