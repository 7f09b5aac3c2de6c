"""Helpers of the fault tests: a dedicated S3 server to kill, freeze and restart, and waiting for uploads."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from testenv import sampledata
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server, SeaweedFSServer

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


def upload_part(window: bytes) -> bool:
    """An UploadPart request: its query names the upload and the part."""
    return b"uploadId=" in window and b"partNumber=" in window


class AfterClaimEvidence:
    """The listing that follows a claim's evidence PUT: step 4 of ``manager/claim.py``. Held there, the
    claim's gate and evidence are certainly on the server and the run has not yet recorded ``Running``:
    exactly the window between the claim and the status that names the folder."""

    _REQUEST = re.compile(rb"(PUT|GET) (\S+) HTTP/1")
    _EVIDENCE = re.compile(rb"tibackup-claim\.[0-9a-f]{16}\.json")

    def __init__(self) -> None:
        self.evidence_sent = False

    def __call__(self, window: bytes) -> bool:
        for method, target in self._REQUEST.findall(window):
            if method == b"PUT" and self._EVIDENCE.search(target):
                self.evidence_sent = True
            elif method == b"GET" and b"list-type=2" in target and self.evidence_sent:
                return True
        return False


class RequestGate:
    """A loopback TCP proxy in front of an S3 server that holds back the first request ``holds`` picks
    (it sees the request's bytes, at most 256 of the previous chunk included) and never lets it reach
    the server: the client waits for an answer that does not come. ``wait_held`` returns once one is
    held; everything else, before and after, passes through unchanged; ``drop_held`` closes the held
    connection as a dead server's would."""

    def __init__(self, server: S3Server, holds: Callable[[bytes], bool]) -> None:
        address = urllib.parse.urlsplit(server.endpoint)
        assert address.port is not None
        self.target = (address.hostname or "127.0.0.1", address.port)
        self.holds = holds
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held = threading.Event()
        self._held_sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def wait_held(self, timeout: float) -> None:
        if not self.held.wait(timeout):
            raise AssertionError(f"no request to hold reached the S3 gate within {timeout:g} s")

    def drop_held(self) -> None:
        with self._lock:
            for sock in self._held_sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._held_sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.drop_held()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the server is down: as a refused connection
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        tail = b""
        try:
            while chunk := source.recv(65536):
                if from_client and not self.held.is_set():
                    window = tail + chunk
                    tail = window[-256:]
                    if self.holds(window) and self._hold(source, sink):
                        return
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                held = sink in self._held_sockets
            if not held:  # a held client hears nothing, not even the end of its server connection
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)

    def _hold(self, client: socket.socket, upstream: socket.socket) -> bool:
        with self._lock:
            if self.held.is_set():
                return False
            self._held_sockets.append(client)
            self.held.set()
        upstream.close()  # the part never reaches the server: the upload stays unfinished
        return True


class PartGate(RequestGate):
    """Holds back the first UploadPart request.

    Watching the server for an unfinished upload and then killing it is a race: a fast writer (the C
    row reader, a small file) can start and complete its upload between two looks, and the test then
    waits for an upload that has come and gone. Behind the gate, once ``wait_held`` returns an upload
    is certainly open on the server (created and journaled, its first part unanswered) and stays so:
    the writer cannot complete it. Kill or freeze the server, then ``drop_held``."""

    def __init__(self, server: S3Server) -> None:
        super().__init__(server, upload_part)


def restart_s3(server: SeaweedFSServer, bucket: str = "faults") -> None:
    """Start a killed server again (same port, same data) and wait until it serves its stored objects:
    SeaweedFS answers listings once its filer is up, but reads objects only after its volume server has
    registered with the master again, seconds later."""
    server.start()
    client = server.client(retries={"max_attempts": 1})

    def serves_objects() -> bool:
        found = client.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents") or []
        try:
            for item in found:
                client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        except Exception:
            return False
        return True

    wait_for(serves_objects, 60, "the restarted S3 to serve its stored objects", interval=0.2)


def uploads(server: SeaweedFSServer, bucket: str = "faults") -> list[dict[str, Any]]:
    return server.list_multipart_uploads(bucket)


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


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
