"""The server's CPU and the machine's idle time around one benchmark command, from /proc.

``server_cpu(pid)`` is the user + system seconds mariadbd has used so far (/proc/PID/stat, all its
threads); ``idle_seconds()`` the idle + iowait seconds of all cores together (/proc/stat). Read both
before and after a command: the differences are the server's work for that command and the core-seconds
nobody used while it ran (with 2 cores, a 1 s run that keeps both busy has 0 s idle).
"""

from __future__ import annotations

import os
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int | None) -> float:
    """mariadbd's user + system CPU seconds so far; 0.0 when the pid is unknown or gone."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15 of stat)


def idle_seconds() -> float:
    """Idle + iowait seconds of all cores since boot (/proc/stat's first line)."""
    with open("/proc/stat") as file:
        cpu = file.readline().split()
    return (int(cpu[4]) + int(cpu[5])) / _TICK


def server_pid(server: Any) -> int | None:
    """The bench server's pid: its own pid file, else the one the server names (an attached server)."""
    pid: int | None = getattr(server, "pid", None)
    if pid:
        return pid
    try:
        with open(server.execute("SELECT @@pid_file")[0][0]) as file:
            return int(file.read().strip())
    except (OSError, ValueError, IndexError):
        return None
