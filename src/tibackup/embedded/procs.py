"""Is the process that runs a Backup still there? Pids are recorded with their start time, so a pid reused
by an unrelated process after a crash is not mistaken for the backup. psutil reads the process table."""

from __future__ import annotations

import os

import psutil

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def start_ticks(pid: int) -> int:
    """The process start time in clock ticks since boot (0 when unknown), as /proc/PID/stat's field 22:
    the unit the store has always recorded, so records written before stay comparable."""
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return 0
    return max(0, round((created - psutil.boot_time()) * _CLOCK_TICKS))


def process_alive(pid: int, started: int = 0) -> bool:
    """True when ``pid`` runs, is not a zombie, and (when ``started`` is known) is the same process."""
    if pid <= 0:
        return False
    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True
    if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        return False
    return not started or start_ticks(pid) in (0, started)
