"""Bursts of SIGTERM/SIGINT (systemd, kubelet, an impatient Ctrl-C) end like one signal: exit 130, one
error line, no traceback, tables unlocked, no multipart upload left; for ``tibackup dump`` to S3 and for
an embedded backup run (``apply --wait``, and the controller's process group as systemd signals it).

"While uploading" is made certain by a ``PartGate`` in front of S3: it holds the first UploadPart, so
when the burst comes a multipart upload is open and stays open (polling S3 for one missed uploads that
live ~1 s on a busy machine); the held part is let go (its connection dropped, as a network blip would,
and retried) once the burst has been sent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from testenv._proc import free_port
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.faults import (
    PartGate,
    apply_wait_process,
    dump_process,
    error_lines,
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


@contextlib.contextmanager
def gate_for(moment: str, s3: S3Server) -> Iterator[PartGate | None]:
    """The S3 gate for the moments that need an open upload; none for "starting" (where the run may
    stop before any part, and a part sent after the burst must not be held)."""
    if moment == "starting":
        yield None
        return
    gate = PartGate(s3)
    try:
        yield gate
    finally:
        gate.close()


def wait_for_moment(moment: str, pid: int, gate: PartGate | None) -> None:
    """When the burst comes: as soon as the process handles signals (still starting: imports, flags,
    connecting), or once a multipart upload is open and its first part held (also the start of the
    spread-out "cleanup" burst)."""
    if gate is None:
        assert moment == "starting"
        wait_for(lambda: handles_sigterm(pid), 60, "the signal handler", interval=0.001)
    else:
        gate.wait_held(60)


def burst_at(
    moment: str, pid: int, gate: PartGate | None, count: int, *, group: bool = False, spread: float = 0.0
) -> None:
    wait_for_moment(moment, pid, gate)
    burst(pid, count, group=group, spread=spread)
    if gate is not None:
        gate.drop_held()


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
    with gate_for(moment, s3_server) as gate:
        proc = dump_process(
            mariadb, big_db, f"s3://{bucket}/dump", "-t", "2", "-r", "100000",
            "--s3.endpoint", gate.endpoint if gate else s3_server.endpoint, "--s3.provider", "other", env=env,
        )  # fmt: skip
        burst_at(moment, proc.pid, gate, count, spread=0.05 if moment == "cleanup" else 0.0)
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
    with gate_for(moment, env.s3) as gate:
        if gate is not None:
            doc["spec"]["s3"]["endpoint"] = gate.endpoint  # type: ignore[index]
        process = apply_wait_process(env.state, doc)
        burst_at(moment, process.pid, gate, count)
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
    gate = PartGate(env.s3)
    doc["spec"]["s3"]["endpoint"] = gate.endpoint  # type: ignore[index]
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0
    log = tmp_path / "controller.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tibackup.cli.main", "controller", "--state-dir", str(env.state),
             "--interval", "0.5", "--metrics-port", str(free_port())],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        burst_at("uploading", process.pid, gate, 10, group=True)
        code = process.wait(timeout=120)
    finally:
        gate.close()
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
