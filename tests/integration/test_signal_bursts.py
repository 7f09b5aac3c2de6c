"""Bursts of SIGTERM/SIGINT (systemd, kubelet, an impatient Ctrl-C) end like one signal: exit 130, one
error line, no traceback, tables unlocked, no multipart upload left; for ``tibackup dump`` to S3 and for
an embedded backup run (``apply --wait``, and the controller's process group as systemd signals it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.faults import (
    apply_wait_process,
    dump_process,
    error_lines,
    has_uploads,
    load_big_table,
    wait_for,
)
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.resources import Backup

__all__ = ["env_fixture"]
pytestmark = pytest.mark.integration

ROWS = 300_000  # ~28 MB of SQL: a few multipart parts per file


def burst(pid: int, count: int, *, group: bool = False, spread: float = 0.0) -> None:
    """``count`` signals, SIGTERM and SIGINT in turn, back to back (or ``spread`` seconds apart)."""
    kill = os.killpg if group else os.kill
    for index in range(count):
        try:
            kill(pid, signal.SIGTERM if index % 2 == 0 else signal.SIGINT)
        except ProcessLookupError:
            return
        if spread:
            time.sleep(spread)


def handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` installed its SIGTERM handler (before that, the interpreter is still
    starting and a signal simply ends it, as it would end any program)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def wait_for_moment(moment: str, pid: int, s3: S3Server, bucket: str) -> None:
    """When the burst comes: as soon as the process handles signals (still starting: imports, flags,
    connecting), or once a multipart upload runs (also the start of the spread-out "cleanup" burst)."""
    if moment == "starting":
        wait_for(lambda: handles_sigterm(pid), 60, "the signal handler", interval=0.001)
    else:
        wait_for(has_uploads(s3, bucket), 60, "a multipart upload to start")


def assert_ended_like_one_signal(code: int, stderr: str) -> None:
    assert code == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert len(error_lines(stderr)) == 1, stderr
    assert "interrupted" in error_lines(stderr)[0], stderr


@pytest.fixture(scope="module")
def big_db(mariadb: MariaDBServer) -> str:
    return load_big_table(mariadb, "signal_bursts", rows=ROWS)


def no_locks_left(mariadb: MariaDBServer) -> bool:
    rows = mariadb.execute("SHOW PROCESSLIST")
    return not [r for r in rows if "FLUSH TABLES" in str(r[7] or "") or "lock" in str(r[6] or "").lower()]


@pytest.mark.parametrize("moment", ["starting", "uploading", "cleanup"])
@pytest.mark.parametrize("count", [2, 5, 10])
def test_dump_to_s3_signal_burst(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    big_db: str,
    tmp_path: Path,
    moment: str,
    count: int,
) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "TIBACKUP_UPLOAD_JOURNAL": str(tmp_path / "journal"),
    }
    proc = dump_process(
        mariadb, big_db, f"s3://{bucket}/dump", "-t", "2", "-r", "100000",
        "--s3.endpoint", s3_server.endpoint, "--s3.provider", "other", env=env,
    )  # fmt: skip
    wait_for_moment(moment, proc.pid, s3_server, bucket)
    burst(proc.pid, count, spread=0.05 if moment == "cleanup" else 0.0)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the dump finished before the signals came")
    assert_ended_like_one_signal(proc.returncode, stderr)
    assert s3_server.list_multipart_uploads(bucket) == []
    assert "metadata" not in [k.rsplit("/", 1)[-1] for k in s3_server.list_keys(bucket)]
    assert no_locks_left(mariadb)


@pytest.mark.parametrize("moment", ["starting", "uploading"])
@pytest.mark.parametrize("count", [2, 5, 10])
def test_apply_wait_signal_burst(env: Env, big_db: str, count: int, moment: str) -> None:
    doc = backup_doc(env, f"burst{count}", dumpling={"options": ["--threads=2", "--rows=100000"]})
    doc["spec"]["tableFilter"] = [f"{big_db}.*"]  # type: ignore[index]
    process = apply_wait_process(env.state, doc)
    wait_for_moment(moment, process.pid, env.s3, env.bucket)
    burst(process.pid, count)
    _, stderr = process.communicate(timeout=120)
    assert_ended_like_one_signal(process.returncode, stderr)
    backup = Store(env.state).get(KIND_BACKUP, "test1", f"burst{count}")
    if moment == "starting" and not (isinstance(backup, Backup) and backup.status.phase):
        assert env.s3.list_multipart_uploads(env.bucket) == []  # stopped before it was stored or started
        return
    assert isinstance(backup, Backup) and backup.status.phase == "Failed", backup
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.reason == "Interrupted"
    assert env.s3.list_multipart_uploads(env.bucket) == []
    assert no_locks_left(env.mariadb)


def test_controller_process_group_signal_burst(env: Env, big_db: str, tmp_path: Path) -> None:
    """systemd's default KillMode signals the whole group: the controller and its backup child."""
    doc = backup_doc(env, "grouped", dumpling={"options": ["--threads=2", "--rows=100000"]})
    doc["spec"]["tableFilter"] = [f"{big_db}.*"]  # type: ignore[index]
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0
    log = tmp_path / "controller.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tibackup.cli.main", "controller", "--state-dir", str(env.state),
             "--interval", "0.5"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(has_uploads(env.s3, env.bucket), 60, "a multipart upload to start")
        burst(process.pid, 10, group=True)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "Exception ignored" not in text, text
    backup = Store(env.state).get(KIND_BACKUP, "test1", "grouped")
    assert isinstance(backup, Backup) and backup.status.phase == "Failed", text
    failed = backup.status.condition("Failed")
    assert failed is not None and failed.reason == "Interrupted"
    assert env.s3.list_multipart_uploads(env.bucket) == []
    assert no_locks_left(env.mariadb)
