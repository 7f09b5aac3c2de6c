"""``tibackup controller`` on the real MariaDB and S3 servers: schedules create named, labelled, owned
Backups; retention by maxBackups and by maxReservedTime; pause; a controller killed mid-backup and
restarted recovers the Backup (Failed, Interrupted, GC life time restored); SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from testenv import sampledata
from testenv._proc import free_port

from tests.integration.test_embedded_cli import Env, backup_doc, backup_spec, env_fixture, keys_under

__all__ = ["env_fixture"]  # the `env` fixture, shared with the CLI tests
from tibackup.control.naming import backup_from_schedule, schedule_labels
from tibackup.embedded.controller import Controller
from tibackup.embedded.store import KIND_BACKUP, KIND_SCHEDULE, Store
from tibackup.resources import Backup, BackupSchedule, set_condition

pytestmark = pytest.mark.integration
NAME_FORMAT = re.compile(r"^sched-\d{4}-\d{2}-\d{2}t\d{2}-\d{2}-\d{2}$")


@contextmanager
def controller(env: Env, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """The controller as its own process group (so a test can kill it with its children at once), its
    metrics on a free port unless ``extra`` names one (never the default 9840: tests/conftest.py)."""
    port = () if "--metrics-port" in extra else ("--metrics-port", str(free_port()))
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tibackup.cli.main", "controller", "--state-dir", str(env.state),
             "--interval", "0.5", *port, *extra],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def schedule_doc(env: Env, **spec: object) -> str:
    doc = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "sched", "namespace": "test1"},
        "spec": {"backupTemplate": backup_spec(env, cleanPolicy="Delete"), **spec},
    }
    return yaml.safe_dump(doc)


def backups(store: Store) -> list[Backup]:
    return store.list_resources(KIND_BACKUP, "test1")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_schedule_creates_labelled_backups_and_keeps_max_backups(env: Env, tmp_path: Path) -> None:
    assert env.tib("apply", "-f", "-", stdin=schedule_doc(env, schedule="@every 2s", maxBackups=2)).code == 0
    port = free_port()
    log = tmp_path / "controller.log"
    store = Store(env.state)
    with controller(env, log, "--metrics-port", str(port)) as process:
        wait_for(lambda: "retention: deleting" in log.read_text(), 60, "retention to delete a backup")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert stop(process) == 0
    text = log.read_text()
    assert "controller stopped" in text
    created = re.findall(r"schedule test1/sched: created backup (\S+)", text)
    assert len(created) >= 3 and all(NAME_FORMAT.match(n) for n in created), created
    remaining = backups(store)
    complete = [b for b in remaining if b.status.phase == "Complete"]
    assert 1 <= len(complete) <= 2
    assert created[0] not in {b.metadata.name for b in remaining}, "the oldest was pruned"
    for backup in remaining:
        assert backup.metadata.labels == schedule_labels("sched")
        owner = (backup.metadata.owner_references or [])[0]
        assert (owner.kind, owner.name, owner.controller) == ("BackupSchedule", "sched", True)
    # Deleted backups' files went (cleanPolicy Delete); the remaining complete ones are all there.
    keys = env.s3.list_keys(env.bucket)
    folders = {k.split("/", 1)[0] for k in keys}
    kept = {(b.status.backup_path or "").removeprefix(f"s3://{env.bucket}/").rstrip("/") for b in remaining}
    # No folder that no Backup knows about: a Backup the controller's SIGTERM stopped between its claim
    # and Running took its claim back (test_embedded_claim_window.py makes that window deterministic).
    assert folders <= kept, (folders - kept, keys)
    assert not [b.metadata.name for b in remaining if b.status.claim_path]
    for backup in complete:
        assert keys_under(env, backup.status.backup_path or "")
    schedule = store.get(KIND_SCHEDULE, "test1", "sched")
    assert isinstance(schedule, BackupSchedule)
    status = schedule.status
    assert status.last_backup == created[-1] and status.last_backup_time is not None
    assert status.last_successful_backup in {b.metadata.name for b in complete}
    assert status.all_backup_clean_time is not None
    assert 'tibackup_schedule_last_success_timestamp_seconds{namespace="test1",schedule="sched"}' in metrics
    size = re.search(
        r'tibackup_schedule_last_backup_size_bytes\{namespace="test1",schedule="sched"\} (\S+)', metrics
    )
    assert size and float(size.group(1)) > 0
    assert (
        'tibackup_schedule_last_backup_status{namespace="test1",phase="Complete",schedule="sched"}' in metrics
    )
    assert 'tibackup_schedule_last_backup_success{namespace="test1",schedule="sched"} 1.0' in metrics
    for secret in (env.s3.secret_key, env.mariadb.password):
        assert secret not in text
    listed = env.tib("get", "bk", "-n", "test1", "-l", "tidb.pingcap.com/backup-schedule=sched", "-o", "name")
    assert sorted(listed.out.split()) == sorted(f"backup.pingcap.com/{b.metadata.name}" for b in remaining)
    gone = env.tib("delete", "bks", "sched", "-n", "test1")
    assert gone.code == 0 and 'backupschedule.pingcap.com "sched" deleted' in gone.out
    assert backups(store) == [] and env.s3.list_keys(env.bucket) == []


def test_max_reserved_time_prunes_old_backups(env: Env, tmp_path: Path) -> None:
    doc = schedule_doc(env, schedule="@every 1s", maxReservedTime="3s", maxBackups=100)
    assert env.tib("apply", "-f", "-", stdin=doc).code == 0
    log = tmp_path / "controller.log"
    with controller(env, log, "--metrics-port", "0") as process:
        wait_for(lambda: "(maxReservedTime 3s)" in log.read_text(), 60, "retention by maxReservedTime")
        assert stop(process) == 0
    created = re.findall(r"schedule test1/sched: created backup (\S+)", log.read_text())
    remaining = {b.metadata.name for b in backups(Store(env.state))}
    assert created[0] not in remaining


def _owned_backup(store: Store, schedule: BackupSchedule, age: timedelta) -> Backup:
    now = schedule.metadata.creation_timestamp
    assert now is not None
    backup = store.create(backup_from_schedule(schedule, now - age), now - age)
    assert isinstance(backup, Backup)
    backup.status = set_condition(backup.status, "Complete", None, None, now - age)
    store.update_status(backup)
    return backup


def _paused_schedule(env: Env, max_backups: int) -> tuple[Store, BackupSchedule]:
    doc = schedule_doc(env, schedule="@every 1s", maxBackups=max_backups, pause=True)
    assert env.tib("apply", "-f", "-", stdin=doc).code == 0
    store = Store(env.state)
    schedule = store.get(KIND_SCHEDULE, "test1", "sched")
    assert isinstance(schedule, BackupSchedule) and schedule.metadata.creation_timestamp is not None
    return store, schedule


def test_pause_takes_no_backups_but_retention_runs(env: Env) -> None:
    store, schedule = _paused_schedule(env, 1)
    assert schedule.metadata.creation_timestamp is not None
    old = _owned_backup(store, schedule, timedelta(hours=2))
    new = _owned_backup(store, schedule, timedelta(hours=1))
    ctl = Controller(env.state)
    for seconds in (3, 6):
        ctl.tick(now=schedule.metadata.creation_timestamp + timedelta(seconds=seconds))
    assert [b.metadata.name for b in backups(store)] == [new.metadata.name], "only retention acted"
    assert old.metadata.name not in {b.metadata.name for b in backups(store)}
    paused = store.get(KIND_SCHEDULE, "test1", "sched")
    assert isinstance(paused, BackupSchedule)
    assert paused.status.last_skipped is not None and "pause" in (paused.status.last_skipped_reason or "")
    assert paused.status.next_backup_time is None and paused.status.last_backup is None
    described = env.tib("describe", "bks", "sched", "-n", "test1").out
    assert "BackupSkipped" in described and "BackupDeleted" in described


@pytest.fixture()
def gc_stand_in(env: Env) -> Iterator[None]:
    env.mariadb.execute(
        "CREATE OR REPLACE TABLE mysql.tidb (VARIABLE_NAME varchar(64) PRIMARY KEY, "
        "VARIABLE_VALUE varchar(1024), COMMENT varchar(1024))"
    )
    env.mariadb.execute("INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s', 'stand-in')")
    try:
        yield
    finally:
        env.mariadb.execute("DROP TABLE IF EXISTS mysql.tidb")


def _gc(env: Env) -> str:
    return str(
        env.mariadb.execute(
            "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'"
        )[0][0]
    )


def test_controller_killed_mid_backup_then_restarted_recovers(
    env: Env, gc_stand_in: None, tmp_path: Path
) -> None:
    conn = env.mariadb.connect()
    try:
        sampledata.load_wide_table(conn, env.database, rows=600_000)
    finally:
        conn.close()
    doc = backup_doc(env, "big", dumpling={"options": ["--threads=1", "--rows=50000"]})
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0
    store = Store(env.state)

    def phase() -> str:
        backup = store.get(KIND_BACKUP, "test1", "big")
        return str(backup.status.phase) if isinstance(backup, Backup) else ""

    log = tmp_path / "controller.log"
    with controller(env, log, "--metrics-port", "0") as process:
        wait_for(lambda: phase() in ("Running", "Complete", "Failed"), 60, "the backup to run")
        assert phase() == "Running", log.read_text()
        assert _gc(env) == "72h"
        child = store.runs()[0].pid
        os.killpg(process.pid, signal.SIGKILL)  # the machine "crashes": controller and backup die at once
        process.wait()
    wait_for(
        lambda: (
            not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        ),
        10,
        "the child to die",
    )
    assert phase() == "Running" and _gc(env) == "72h"
    with controller(env, log, "--metrics-port", "0") as process:
        wait_for(lambda: phase() == "Failed", 60, "recovery")
        assert stop(process) == 0
    backup = store.get(KIND_BACKUP, "test1", "big")
    assert isinstance(backup, Backup)
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.reason == "Interrupted"
    assert _gc(env) == "10m0s"
    assert store.runs() == []


def test_failing_schedule_keeps_only_max_backups_failed_backups(env: Env) -> None:
    """maxBackups counts Failed Backups too: a schedule that keeps failing keeps maxBackups of them."""
    store, schedule = _paused_schedule(env, 2)
    now = schedule.metadata.creation_timestamp
    assert now is not None
    made = []
    for hours in (5, 4, 3, 2, 1):
        backup = store.create(backup_from_schedule(schedule, now - timedelta(hours=hours)), now)
        assert isinstance(backup, Backup)
        backup.status = set_condition(backup.status, "Failed", "ConnectionFailed", "down", now)
        store.update_status(backup)
        made.append(backup.metadata.name)
    Controller(env.state).tick(now=now + timedelta(seconds=3))
    assert sorted(b.metadata.name for b in backups(store)) == sorted(made[-2:])


def test_deleting_a_backup_with_a_pending_gc_restore_restores_it_first(env: Env, gc_stand_in: None) -> None:
    """Deleting forgets the GC record, so a pending restore gets one last try before."""
    env.mariadb.execute("UPDATE mysql.tidb SET VARIABLE_VALUE = '72h'")
    assert env.tib("apply", "-f", "-", stdin=env.backup_yaml("left")).code == 0
    store = Store(env.state)
    backup = store.get(KIND_BACKUP, "test1", "left")
    assert isinstance(backup, Backup)
    backup.status = set_condition(
        backup.status, "Failed", "ConnectionFailed", "down", backup.metadata.creation_timestamp
    )  # type: ignore[arg-type]
    store.update_status(backup)
    store.save_gc_record("test1", "left", backup.metadata.uid or "", {"value": "10m0s", "raisedTo": "72h"})
    assert env.tib("delete", "bk", "left", "-n", "test1").code == 0
    assert _gc(env) == "10m0s"
    assert store.get(KIND_BACKUP, "test1", "left") is None
