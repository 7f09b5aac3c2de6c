"""The start-up table of ``bench/run.py``: wall and CPU time of commands that only start."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testenv.mariadb import MariaDBServer


def startup_times(server: MariaDBServer, db: str, rounds: int) -> list[tuple[str, float, float]]:
    """(command, median wall s, median CPU s) of the start-up alone, the commands taking turns:
    the interpreter with and without ``site`` (this machine's .pth files), ``tibackup dump`` up to its
    first connection attempt (bench/startup.py) and mydumper's start (``--version``)."""
    out = tempfile.mkdtemp(prefix="tibackup-startup-")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -S -c pass (no site, no .pth)": [sys.executable, "-S", "-c", "pass"],
        "tibackup dump to its first connection attempt": [
            sys.executable, str(Path(__file__).with_name("startup.py")), "-h", server.host, "-P",
            str(server.port), "-u", server.user, "-B", db, "-o", out],
        "mydumper --version": ["mydumper", "--version"],
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # from bytecode
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs[name].append((wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime))
    shutil.rmtree(out, ignore_errors=True)
    return [
        (name, statistics.median(w for w, _ in rs), statistics.median(c for _, c in rs))
        for name, rs in runs.items()
    ]


def startup_report(times: list[tuple[str, float, float]]) -> str:
    lines = [
        "",
        "Start-up (median wall and CPU of the interleaved rounds):",
        "",
        "| command | wall | CPU |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms |" for name, wall, cpu in times]
    return "\n".join(lines) + "\n"
