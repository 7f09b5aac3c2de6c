"""Progress of a long dump: counters the workers bump, and a line on the terminal that shows them."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TextIO

from tibackup.units import human_duration, human_size


class Progress:
    def __init__(self, total_rows: int = 0) -> None:
        self.total_rows = total_rows
        self.rows = 0
        self.bytes = 0
        self.files = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add(self, rows: int, size: int) -> None:
        with self._lock:
            self.rows += rows
            self.bytes += size

    def file_done(self) -> None:
        with self._lock:
            self.files += 1

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes / elapsed
        text = f"{self.rows:,} rows  {human_size(self.bytes)}  {human_size(rate)}/s  {self.files} files"
        if self.total_rows and self.rows:
            done = min(self.rows / self.total_rows, 0.999)
            eta = elapsed * (1 - done) / done
            text = f"{done * 100:4.1f}%  " + text + f"  ETA {human_duration(eta)}"
        return text + f"  elapsed {human_duration(elapsed)}"


class ProgressPrinter:
    """Redraws one status line on a terminal every ``interval`` seconds until stopped."""

    def __init__(self, progress: Progress, stream: TextIO | None = None, interval: float = 0.5) -> None:
        self.progress, self.stream, self.interval = progress, stream or sys.stderr, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.stream.write("\r\x1b[K" + self.progress.line())
            self.stream.flush()

    def __enter__(self) -> ProgressPrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.stream.write("\r\x1b[K")
        self.stream.flush()


def progress_shown(progress: Progress, show: bool | None) -> contextlib.AbstractContextManager[object]:
    """A ProgressPrinter when ``show`` (None: when stderr is a terminal), else nothing."""
    if show if show is not None else sys.stderr.isatty():
        return ProgressPrinter(progress)
    return contextlib.nullcontext()
