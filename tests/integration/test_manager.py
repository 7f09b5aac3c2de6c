"""The backup manager on the real MariaDB and S3 servers: one Backup through SPEC §3, end to end.

The runtime is ``managerutil.MemoryRuntime``: Secrets in a dict, every saved status and event in lists.
TiDB's GC table is simulated by a real ``mysql.tidb`` table created in MariaDB (``gc_stand_in``), a
stand-in the manager treats exactly like TiDB's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.dumputil import roundtrip
from tests.integration.managerutil import (
    CHILD_SCRIPT,
    DB_SECRET,
    NS,
    S3_SECRET,
    TABLES,
    FileRuntime,
    MemoryRuntime,
    fetch,
    gc_value,
    make_backup,
    s3_prefix,
    wrap_storage,
)
from tibackup.errors import Interrupted, StorageError
from tibackup.manager import clean_backup, recover_interrupted, run_backup
from tibackup.manager import run as run_module
from tibackup.resources import Backup, Phase

pytestmark = pytest.mark.integration


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture()
def sample(mariadb: MariaDBServer, fresh_db: str) -> str:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t1 (id INT PRIMARY KEY, s VARCHAR(40), d DATETIME)")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t1 SELECT seq, CONCAT('row ', seq, ' it''s'), '2024-01-02 03:04:05' "
        "FROM seq_1_to_5000",
        database=fresh_db,
    )
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t2 (k VARCHAR(20) PRIMARY KEY, b BLOB)")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t2 SELECT CONCAT('k', seq), UNHEX(MD5(seq)) FROM seq_1_to_300",
        database=fresh_db,
    )
    return fresh_db


@pytest.fixture()
def gc_stand_in(mariadb: MariaDBServer) -> Iterator[None]:
    """A stand-in for TiDB's GC table: a real mysql.tidb with a tikv_gc_life_time row of 10m0s."""
    mariadb.execute(
        "CREATE OR REPLACE TABLE mysql.tidb (VARIABLE_NAME VARCHAR(64) PRIMARY KEY, "
        "VARIABLE_VALUE VARCHAR(1024), COMMENT VARCHAR(1024))"
    )
    mariadb.execute("INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s', 'stand-in')")
    yield
    mariadb.execute("DROP TABLE IF EXISTS mysql.tidb")


@pytest.fixture()
def runtime(tmp_path: Path, mariadb: MariaDBServer, s3_server: S3Server) -> MemoryRuntime:
    rt = MemoryRuntime(tmp_path / "staging")
    rt.secrets[(NS, DB_SECRET)] = {"password": mariadb.password}
    rt.secrets[(NS, S3_SECRET)] = {"access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    return rt


# -- success ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["direct", "direct-annotated", "staged"])
def test_backup_completes_and_restores(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    runtime: MemoryRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    seen_gc: list[str] = []
    wrap_storage(monkeypatch, lambda name: seen_gc.append(gc_value(mariadb)) or None)  # type: ignore[func-returns-value]
    backup = make_backup(mariadb, s3_server, bucket, sample, mode=mode)

    done = run_backup(backup, runtime)

    status = done.status
    assert status.phase == Phase.COMPLETE, runtime.events
    # Prepare twice: the second save records the folder about to be claimed (claimPath) before its gate.
    # Running twice: the second save records the verification (condition Verified) before the last steps.
    assert runtime.phases() == ["Prepare", "Prepare", "Running", "Running", "Complete"]
    verified = [c for c in runtime.statuses[3].get("conditions", ()) if c.get("type") == "Verified"]
    assert verified and runtime.statuses[3].get("backupSize") == status.backup_size
    claimed = runtime.statuses[1].get("claimPath")
    assert claimed == status.backup_path and "claimPath" not in runtime.statuses[2]
    assert status.backup_path and status.backup_path.startswith(f"s3://{bucket}/nightly/demo1/backup-")
    assert status.backup_path.endswith("Z/")
    prefix = s3_prefix(done)
    sizes = fetch(s3_server, bucket, prefix, tmp_path / "restore")
    assert {"metadata", "tibackup-manifest.json", f"{sample}.t1-schema.sql"} <= set(sizes)
    manifest = json.loads((tmp_path / "restore" / "tibackup-manifest.json").read_text())
    assert all(sizes[f["name"]] == f["size"] for f in manifest["files"])
    assert status.backup_size == sum(sizes.values())
    assert status.backup_size_readable and status.backup_size_readable.endswith("kB")
    pos = [
        ln.split(":", 1)[1].strip()
        for ln in (tmp_path / "restore" / "metadata").read_text().splitlines()
        if "Pos:" in ln
    ]
    assert status.commit_ts == pos[0] and pos[0]
    assert status.time_started and status.time_completed and status.time_taken
    assert status.condition(Phase.COMPLETE) is not None
    # The GC life time was raised while files were written, and is back now.
    assert seen_gc and set(seen_gc) == {"72h"}
    assert gc_value(mariadb) == "10m0s" and runtime.gc_records == {}
    assert {"PreflightPassed", "GCLifeTimeRaised", "Dumped", "GCLifeTimeRestored", "Complete"} <= set(
        runtime.reasons()
    )
    if mode == "staged":
        assert "Uploaded" in runtime.reasons()
        assert not (runtime.staging_dir(done) / "dump").exists(), "staged files are deleted after upload"
    roundtrip(mariadb, sample, TABLES, tmp_path / "restore")


# -- the GC life time is restored whatever happens -----------------------------------------------
def test_gc_restored_after_dump_fails_on_a_table_the_user_cannot_read(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    runtime: MemoryRuntime,
) -> None:
    mariadb.create_user(
        "bk_partial",
        "partial-pass-123",
        [
            "RELOAD, REPLICATION CLIENT",
            f"SELECT ON `{sample}`.t1",
            f"LOCK TABLES ON `{sample}`.*",
            f"INSERT ON `{sample}`.t2",  # t2 is visible, but cannot be read
            "SELECT, UPDATE ON mysql.tidb",
        ],
    )
    runtime.secrets[(NS, DB_SECRET)] = {"password": "partial-pass-123"}
    done = run_backup(make_backup(mariadb, s3_server, bucket, sample, user="bk_partial"), runtime)
    assert done.status.phase == Phase.FAILED
    cond = done.status.condition(Phase.FAILED)
    assert cond is not None and cond.reason == "MissingPrivilege" and "t2" in (cond.message or "")
    assert gc_value(mariadb) == "10m0s" and runtime.gc_records == {}
    assert "GCLifeTimeRestored" in runtime.reasons()


def test_gc_restored_after_s3_becomes_unwritable(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    runtime: MemoryRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrap_storage(
        monkeypatch, lambda name: StorageError("S3 refused writing (simulated)") if ".t1." in name else None
    )
    done = run_backup(make_backup(mariadb, s3_server, bucket, sample), runtime)
    assert done.status.phase == Phase.FAILED
    assert "simulated" in (done.status.condition(Phase.FAILED).message or "")  # type: ignore[union-attr]
    assert gc_value(mariadb) == "10m0s" and runtime.gc_records == {}


def test_keyboard_interrupt_mid_dump_restores_gc_and_marks_interrupted(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    runtime: MemoryRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrap_storage(monkeypatch, lambda name: KeyboardInterrupt() if ".t1." in name else None)
    with pytest.raises((KeyboardInterrupt, Interrupted)):
        run_backup(make_backup(mariadb, s3_server, bucket, sample), runtime)
    assert runtime.statuses[-1]["phase"] == "Failed"
    assert runtime.statuses[-1]["conditions"][-1]["reason"] == "Interrupted"
    assert gc_value(mariadb) == "10m0s" and runtime.gc_records == {}


def test_recover_interrupted_restores_gc_and_aborts_uploads(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    runtime: MemoryRuntime,
) -> None:
    # What a killed process leaves: the GC record saved, the value raised, status Running, an open upload.
    backup = make_backup(mariadb, s3_server, bucket, sample)
    runtime.save_gc_record(backup, {"variable": "tikv_gc_life_time", "value": "10m0s", "raisedTo": "72h"})
    mariadb.execute("UPDATE mysql.tidb SET VARIABLE_VALUE = '72h' WHERE VARIABLE_NAME = 'tikv_gc_life_time'")
    backup.status.phase = Phase.RUNNING
    backup.status.backup_path = f"s3://{bucket}/nightly/demo1/backup-2024-01-01T00:00:00Z/"
    s3_server.client().create_multipart_upload(
        Bucket=bucket, Key="nightly/demo1/backup-2024-01-01T00:00:00Z/db.t1.000000000.sql"
    )
    done = recover_interrupted(backup, runtime)
    assert done.status.phase == Phase.FAILED
    cond = done.status.condition(Phase.FAILED)
    assert (
        cond is not None and cond.reason == "Interrupted" and "run the backup again" in (cond.message or "")
    )
    assert gc_value(mariadb) == "10m0s" and runtime.gc_records == {}
    assert s3_server.list_multipart_uploads(bucket) == []
    assert {"GCLifeTimeRestored", "UploadsAborted", "Interrupted"} <= set(runtime.reasons())


def test_killed_process_leaves_running_and_recover_restores_gc(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    tmp_path: Path,
    runtime: MemoryRuntime,
) -> None:
    state, spec = tmp_path / "state.json", tmp_path / "backup.json"
    rt = FileRuntime(tmp_path / "staging", state)
    rt.secrets = dict(runtime.secrets)
    rt._write()
    backup = make_backup(mariadb, s3_server, bucket, sample)
    spec.write_text(backup.model_dump_json(by_alias=True))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, str(tmp_path / "staging"), str(state), str(spec)],
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(["src", "."])},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            loaded = FileRuntime.load(tmp_path / "staging", state)
            if loaded.statuses and loaded.statuses[-1].get("phase") == "Running":
                break
            assert child.poll() is None, "the child backup ended early"
            time.sleep(0.2)
        else:
            pytest.fail("the child backup never reached Running")
        time.sleep(0.5)  # into the dump
        child.send_signal(signal.SIGKILL)  # no finally runs: the GC life time stays raised
    finally:
        child.kill()
        child.wait()
    assert gc_value(mariadb) == "72h"
    left = FileRuntime.load(tmp_path / "staging", state)
    assert left.gc_records, "the old value was recorded before the change"
    backup.status = backup.status.model_validate(left.statuses[-1])
    done = recover_interrupted(backup, left)
    assert done.status.phase == Phase.FAILED and done.status.condition(Phase.FAILED).reason == "Interrupted"  # type: ignore[union-attr]
    assert gc_value(mariadb) == "10m0s" and left.gc_records == {}
    assert FileRuntime.load(tmp_path / "staging", state).gc_records == {}


# -- staged: upload failure keeps the dump, a re-run uploads it without dumping again ------------
def test_staged_upload_failure_keeps_files_and_rerun_uploads_them(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    runtime: MemoryRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backup = make_backup(mariadb, s3_server, bucket, sample, mode="staged")
    with monkeypatch.context() as patch:
        wrap_storage(
            patch,
            lambda name: StorageError("S3 stopped accepting uploads (simulated)") if ".t2." in name else None,
        )
        failed = run_backup(backup, runtime)
    assert failed.status.phase == Phase.FAILED
    cond = failed.status.condition(Phase.FAILED)
    assert cond is not None and cond.reason == "UploadFailed"
    assert "kept" in (cond.message or "") and "without dumping again" in (cond.message or "")
    staged = runtime.staging_dir(backup) / "dump"
    assert (staged / "metadata").is_file() and (staged / f"{sample}.t2.000000000.sql").is_file()
    assert not any(k.endswith("/metadata") for k in s3_server.list_keys(bucket)), (
        "no completion marker uploaded"
    )

    def no_dump(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the dumper must not run again")

    monkeypatch.setattr(run_module, "run_dump", no_dump)
    done = run_backup(failed, runtime)
    assert done.status.phase == Phase.COMPLETE, runtime.events[-1]
    assert done.status.backup_path == failed.status.backup_path
    assert "StagedDumpReused" in runtime.reasons()
    assert not staged.exists()
    fetch(s3_server, bucket, s3_prefix(done), tmp_path / "restore")
    roundtrip(mariadb, sample, TABLES, tmp_path / "restore")


# -- failures with a reason and a one-line message -------------------------------------------------
def _failure(backup: Backup, runtime: MemoryRuntime) -> tuple[str, str, str]:
    done = run_backup(backup, runtime)
    status = done.status
    assert status.phase in (Phase.FAILED, Phase.INVALID)
    cond = status.condition(status.phase)  # type: ignore[arg-type]
    assert cond is not None and cond.reason and cond.message and "\n" not in cond.message
    assert runtime.events[-1][0] == "Warning"
    return str(status.phase), cond.reason, cond.message


def test_wrong_password(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, sample: str, runtime: MemoryRuntime
) -> None:
    runtime.secrets[(NS, DB_SECRET)] = {"password": "not-the-password"}
    phase, reason, message = _failure(make_backup(mariadb, s3_server, bucket, sample), runtime)
    assert (phase, reason) == ("Failed", "AccessDenied") and "password" in message


def test_missing_secret_and_key(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, sample: str, runtime: MemoryRuntime
) -> None:
    del runtime.secrets[(NS, S3_SECRET)]
    phase, reason, message = _failure(make_backup(mariadb, s3_server, bucket, sample), runtime)
    assert (phase, reason) == ("Failed", "SecretNotFound")
    assert S3_SECRET in message and "spec.s3.secretName" in message and "create" in message
    runtime.secrets[(NS, DB_SECRET)] = {"passwd": "x"}
    phase, reason, message = _failure(make_backup(mariadb, s3_server, bucket, sample), runtime)
    assert reason == "SecretKeyMissing" and "'password'" in message and DB_SECRET in message


def test_missing_bucket(
    mariadb: MariaDBServer, s3_server: S3Server, sample: str, runtime: MemoryRuntime
) -> None:
    phase, reason, message = _failure(make_backup(mariadb, s3_server, "no-such-bucket-here", sample), runtime)
    assert (phase, reason) == ("Failed", "StorageCheckFailed") and "no-such-bucket-here" in message


def test_wrong_s3_secret(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, sample: str, runtime: MemoryRuntime
) -> None:
    runtime.secrets[(NS, S3_SECRET)] = {
        "access_key": s3_server.access_key,
        "secret_key": s3_server.bad_secret_key,
    }
    phase, reason, message = _failure(make_backup(mariadb, s3_server, bucket, sample), runtime)
    assert (phase, reason) == ("Failed", "StorageCheckFailed") and "secret_key" in message


def test_unknown_dumpling_option_is_invalid(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, sample: str, runtime: MemoryRuntime
) -> None:
    backup = make_backup(mariadb, s3_server, bucket, sample, options=["--threads=2", "--no-such-flag"])
    phase, reason, message = _failure(backup, runtime)
    assert (phase, reason) == ("Invalid", "InvalidSpec") and "spec.dumpling.options" in message
    assert "--no-such-flag" in message
    assert runtime.phases() == ["Invalid"]


def test_missing_privileges_are_named(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, sample: str, runtime: MemoryRuntime
) -> None:
    mariadb.create_user("bk_select", "select-pass-123", ["SELECT"])
    runtime.secrets[(NS, DB_SECRET)] = {"password": "select-pass-123"}
    phase, reason, message = _failure(
        make_backup(mariadb, s3_server, bucket, sample, user="bk_select"), runtime
    )
    assert (phase, reason) == ("Failed", "MissingPrivilege")
    assert "LOCK TABLES, RELOAD, REPLICATION CLIENT" in message and "bk_select" in message


# -- no Secret value anywhere ------------------------------------------------------------------------
def test_no_secret_value_in_status_events_or_log(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    runtime: MemoryRuntime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "Sup3r-Secret-DB-Pass"
    mariadb.create_user("bk_leak", password, ["SELECT, RELOAD, LOCK TABLES, REPLICATION CLIENT, SHOW VIEW"])
    caplog.set_level(logging.DEBUG)
    runtime.secrets[(NS, DB_SECRET)] = {"password": password}
    ok = run_backup(make_backup(mariadb, s3_server, bucket, sample, user="bk_leak"), runtime)
    assert ok.status.phase == Phase.COMPLETE
    runtime.secrets[(NS, S3_SECRET)] = {
        "access_key": s3_server.access_key,
        "secret_key": s3_server.bad_secret_key,
    }
    bad = run_backup(make_backup(mariadb, s3_server, bucket, sample, user="bk_leak", name="b2"), runtime)
    assert bad.status.phase == Phase.FAILED
    runtime.secrets[(NS, DB_SECRET)] = {"password": password + "-wrong"}
    bad = run_backup(make_backup(mariadb, s3_server, bucket, sample, user="bk_leak", name="b3"), runtime)
    assert bad.status.phase == Phase.FAILED
    recorded = json.dumps(runtime.statuses) + json.dumps(runtime.events) + caplog.text
    for secret in (password, s3_server.secret_key, s3_server.bad_secret_key):
        assert secret not in recorded


# -- clean policy ----------------------------------------------------------------------------------
def test_clean_policies(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, sample: str, runtime: MemoryRuntime
) -> None:
    done = run_backup(make_backup(mariadb, s3_server, bucket, sample, clean_policy="OnFailure"), runtime)
    assert done.status.phase == Phase.COMPLETE
    prefix = s3_prefix(done)
    assert clean_backup(done, runtime) is False, "OnFailure keeps a complete backup"
    done.spec.clean_policy = "Retain"
    assert clean_backup(done, runtime) is False and s3_server.list_keys(bucket, prefix)
    done.spec.clean_policy = "Delete"
    assert clean_backup(done, runtime) is True
    assert s3_server.list_keys(bucket, prefix) == []
    assert clean_backup(done, runtime) is False, "data already gone: cleans at once"
    never_ran = make_backup(mariadb, s3_server, bucket, sample, clean_policy="Delete")
    assert clean_backup(never_ran, runtime) is False


def test_full_staging_disk_fails_clearly_and_restores_gc(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    sample: str,
    gc_stand_in: None,
    tmp_path: Path,
) -> None:
    """A staged backup whose staging volume fills up: Failed naming the cause, GC restored, nothing complete."""
    import subprocess

    staging = tmp_path / "tiny-staging"
    staging.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(staging)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        rt = MemoryRuntime(staging)
        rt.secrets[(NS, DB_SECRET)] = {"password": mariadb.password}
        rt.secrets[(NS, S3_SECRET)] = {"access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
        done = run_backup(make_backup(mariadb, s3_server, bucket, sample, mode="staged"), rt)
    finally:
        subprocess.run(["umount", "-l", str(staging)], check=False)
    failed = done.status.condition(Phase.FAILED)
    assert done.status.phase == Phase.FAILED and failed is not None
    assert "no space left" in (failed.message or "").lower(), failed.message
    assert "\n" not in (failed.message or "")
    assert gc_value(mariadb) == "10m0s" and rt.gc_records == {}
    assert not [k for k in s3_server.list_keys(bucket) if k.endswith("/metadata")], "nothing looks complete"


def test_table_filter_matching_nothing_completes_with_a_warning_event(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, runtime: MemoryRuntime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The event is there, and the manager's log says it once (the dumper's line), not twice."""
    backup = make_backup(mariadb, s3_server, bucket, "tibackup_no_such_db")

    with caplog.at_level(logging.INFO, logger="tibackup"):
        done = run_backup(backup, runtime)

    said = [r for r in caplog.records if "matched no table or view" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING, [r.getMessage() for r in said]

    assert done.status.phase == Phase.COMPLETE, runtime.events
    warnings = [(reason, text) for kind, reason, text in runtime.events if kind == "Warning"]
    assert warnings == [
        (
            "TableFilterMatchedNothing",
            "the table filter (tibackup_no_such_db.*) matched no table or view: the backup holds no data; "
            "check -f/-T/-B (a Backup's spec.tableFilter or its dumpling.options)",
        )
    ], runtime.events
