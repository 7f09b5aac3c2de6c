"""Is the process that runs a Backup still there? Pids are recorded with their start time, so a pid reused
by an unrelated process after a crash is not mistaken for the backup."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; the rest follows its last ')'.
    _, _, rest = text.rpartition(") ")
    return rest.split() if rest else None


def start_ticks(pid: int) -> int:
    """The process start time in clock ticks since boot (0 where /proc is missing)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return 0
    with contextlib.suppress(ValueError):
        return int(fields[19])
    return 0


def process_alive(pid: int, started: int = 0) -> bool:
    """True when ``pid`` runs, is not a zombie, and (when ``started`` is known) is the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()  # no /proc at all: trust kill(0)
    if fields[0] in ("Z", "X"):
        return False
    return not started or start_ticks(pid) in (0, started)
