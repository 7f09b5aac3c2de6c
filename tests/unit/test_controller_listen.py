"""`tibackup controller`'s metrics listener: this machine only by default, on a port that is not 9090,
and a busy port is one line naming the flag. (No database needed: no Backup runs.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from testenv._proc import free_port

from tibackup.cli.listen import METRICS_PORT


def controller(state: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tibackup.cli.main", "controller", "--state-dir", str(state), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def test_busy_metrics_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = controller(tmp_path, "--metrics-port", str(port))
        _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    [line] = err.strip().splitlines()
    assert line == (
        f"error: cannot listen on 127.0.0.1:{port} (the port is in use); "
        "choose another port with --metrics-port (0: none)"
    )


def test_metrics_listen_on_localhost_by_default(tmp_path: Path) -> None:
    assert METRICS_PORT != 9090  # Prometheus' own
    port = free_port()
    process = controller(tmp_path, "--metrics-port", str(port))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the metrics never answered"
                time.sleep(0.1)
        assert "tibackup_controller_up 1.0" in text
        # Bound to 127.0.0.1 only: another loopback address may take the same port (not so with 0.0.0.0).
        with socket.socket() as other:
            other.bind(("127.0.0.2", port))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=60)
