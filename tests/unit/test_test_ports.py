"""No test listens on the default metrics port of ``tibackup controller`` and ``tibackup operator``
(9840): two test suites running at once on one machine would collide there. The session holds that
port (``tests/conftest.py::default_metrics_port_held``), so a test that starts either command without
a free port of its own (``testenv._proc.free_port``) or ``--metrics-port 0`` fails at once, with the
controller's one line ``cannot listen on 127.0.0.1:9840 (the port is in use)``."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tibackup.cli.listen import METRICS_PORT


def test_the_default_metrics_port_is_not_free_for_the_tests() -> None:
    with socket.socket() as probe, pytest.raises(OSError):
        probe.bind(("127.0.0.1", METRICS_PORT))


def test_a_controller_started_on_the_default_port_fails_at_once(tmp_path: Path) -> None:
    """What a test that forgot its port sees: an exit 2 and one line, not a collision later."""
    result = subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", "controller", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{METRICS_PORT} (the port is in use)" in result.stderr
