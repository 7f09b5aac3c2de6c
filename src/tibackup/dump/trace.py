"""An opt-in timing trace of a dump's pipeline, to see where the wall time goes (bench/trace.py reads it).

``TIBACKUP_DUMP_TRACE=FILE`` makes the dump write one line per timed step to FILE when it ends:
``thread start_ms duration_ms step detail``, times in milliseconds since the process started (its
kernel start time, so interpreter start-up and imports show as the time before the first step). Steps:
``connect``, ``catalog``, ``lock``, ``plan``, ``query`` (sending a chunk's SELECT until its first rows
are fetched and encoded), ``fetch`` (the next rows, fetched and encoded in C), ``write`` (framing,
hashing and writing them), ``close`` (handing a finished file to the background, waiting for a free
slot), ``commit`` (a background thread closing the file), ``idle`` (a worker waiting for a task),
``schema``, ``manifest`` (the manifest and metadata files) and ``end`` (when the trace is written). Without the variable ``span`` costs one attribute check: nothing is recorded.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

_PATH = os.environ.get("TIBACKUP_DUMP_TRACE", "")
ENABLED = bool(_PATH)
_events: list[tuple[str, float, float, str, str]] = []


def _process_start() -> float:
    """The process's start on the ``time.perf_counter`` clock (CLOCK_MONOTONIC on Linux)."""
    try:
        with open("/proc/self/stat") as stat:
            ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as uptime:
            boot_age = float(uptime.read().split()[0])
        age = boot_age - ticks / os.sysconf("SC_CLK_TCK")
        return time.perf_counter() - age
    except (OSError, ValueError, IndexError):
        return time.perf_counter()


# TIBACKUP_DUMP_TRACE_ORIGIN: the process's start as its parent read it (``time.perf_counter()``, the
# same CLOCK_MONOTONIC), finer than the kernel's start time in clock ticks (10 ms); bench/trace.py sets it.
_ORIGIN = (float(os.environ.get("TIBACKUP_DUMP_TRACE_ORIGIN") or 0) or _process_start()) if ENABLED else 0.0


def record(step: str, start: float, detail: str = "") -> None:
    """A step that began at ``start`` (``time.perf_counter()``) and ends now."""
    end = time.perf_counter()
    _events.append((threading.current_thread().name, start, end, step, detail))  # list.append is atomic


@contextlib.contextmanager
def span(step: str, detail: str = "") -> Iterator[None]:
    if not ENABLED:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        record(step, start, detail)


def write() -> None:
    """Write the steps recorded so far to the trace file (a no-op without the variable)."""
    if not ENABLED:
        return
    record("end", time.perf_counter())  # when the trace was written: the dump's last step is done
    with open(_PATH, "w") as out:
        for thread, start, end, step, detail in sorted(_events, key=lambda e: e[1]):
            out.write(f"{thread} {(start - _ORIGIN) * 1000:.3f} {(end - start) * 1000:.3f} {step} {detail}\n")
