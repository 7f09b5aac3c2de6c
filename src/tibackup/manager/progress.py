"""Progress of a long backup in the log: "dumped 1,234,567 rows, 96.5 MB (42 files) in 1m5s"."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tibackup.dump.progress import Progress
from tibackup.units import human_duration, human_size

log = logging.getLogger("tibackup.manager")

DEFAULT_INTERVAL = 30.0  # seconds between log lines


def describe(progress: Progress, verb: str = "dumped") -> str:
    elapsed = human_duration(time.monotonic() - progress.started)
    rows = f"{progress.rows:,} rows, " if progress.rows else ""  # uploads move files, not rows
    return f"{verb} {rows}{human_size(progress.bytes)} ({progress.files} files) in {elapsed}"


class ProgressLog:
    """Logs ``describe(progress)`` every ``interval`` seconds while it is entered, and once at the end."""

    def __init__(
        self,
        progress: Progress,
        verb: str = "dumped",
        interval: float = DEFAULT_INTERVAL,
        sink: Callable[[str], None] | None = None,
    ) -> None:
        self.progress, self.verb, self.interval = progress, verb, interval
        self.sink = sink or log.info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-log", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sink(describe(self.progress, self.verb))

    def __enter__(self) -> ProgressLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
