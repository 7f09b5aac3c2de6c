"""Helpers of the fault tests: a dedicated S3 server to kill, freeze and restart, and waiting for uploads."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from testenv import sampledata
from testenv.mariadb import MariaDBServer
from testenv.s3 import SeaweedFSServer

BIG_TABLE_ROWS = 400_000  # ~37 MB of SQL: several 8 MiB parts in one file


@contextlib.contextmanager
def dedicated_s3(tmp_path: Path) -> Iterator[SeaweedFSServer]:
    """A SeaweedFS of this test alone (the test kills or freezes it), with a bucket 'faults'."""
    server = SeaweedFSServer(tmp_path / "weed")
    server.start()
    try:
        server.create_bucket("faults")
        yield server
    finally:
        pid = server.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a frozen server cannot even die
        server.stop(remove=True)


def kill_s3(server: SeaweedFSServer) -> None:
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    server.stop(remove=False)  # reaps it and forgets the pid; the data folder stays


def uploads(server: SeaweedFSServer, bucket: str = "faults") -> list[dict[str, Any]]:
    return server.list_multipart_uploads(bucket)


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def has_uploads(server: SeaweedFSServer, bucket: str = "faults") -> Callable[[], bool]:
    client = server.client(retries={"max_attempts": 1})

    def check() -> bool:
        return bool(client.list_multipart_uploads(Bucket=bucket).get("Uploads"))

    return check


def dump_process(
    mariadb: MariaDBServer, database: str, output: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``tibackup dump`` of ``database`` as its own process, stderr captured."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TIBACKUP_DB"))}
    environment.update({"TIBACKUP_DB_PASSWORD": mariadb.password, **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "tibackup.cli.main", "dump", "-h", mariadb.host, "-P", str(mariadb.port),
         "-u", mariadb.user, "-B", database, "-o", output, *args],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip


def load_big_table(mariadb: MariaDBServer, database: str, rows: int = BIG_TABLE_ROWS) -> str:
    conn = mariadb.connect()
    try:
        sampledata.load_wide_table(conn, database, rows=rows)
    finally:
        conn.close()
    return database


def apply_wait_process(state: Path, doc: dict[str, Any], **popen: Any) -> subprocess.Popen[str]:
    """``tibackup apply -f - --wait`` of ``doc`` as its own process (stdin already written and closed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tibackup.cli.main", "apply", "-f", "-", "--wait", "--state-dir", str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(yaml.safe_dump(doc))
    process.stdin.close()
    process.stdin = None  # communicate() must not flush it
    return process


def s3_env(server: SeaweedFSServer, journal: Path) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "TIBACKUP_UPLOAD_JOURNAL": str(journal),
    }


def s3_args(server: SeaweedFSServer) -> list[str]:
    return ["--s3.endpoint", server.endpoint, "--s3.provider", "other", "--s3.region", server.region]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]
