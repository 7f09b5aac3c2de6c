"""The embedded runtime's process checks (psutil): the same start-time unit as before, zombies are dead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tibackup.embedded.procs import process_alive, start_ticks


def stat_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat (what the store recorded before psutil did the reading)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[19])


def test_start_ticks_are_procs_own_so_stored_records_stay_valid() -> None:
    assert start_ticks(os.getpid()) == stat_ticks(os.getpid())
    assert process_alive(os.getpid(), start_ticks(os.getpid()))
    assert not process_alive(os.getpid(), start_ticks(os.getpid()) + 1)  # a reused pid


def test_exited_and_zombie_processes_are_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: a zombie (wait for it to exit without reaping).
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not process_alive(child.pid)
    child.wait()
    assert not process_alive(child.pid)
    assert start_ticks(child.pid) == 0
    assert not process_alive(0) and not process_alive(-1)
