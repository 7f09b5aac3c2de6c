"""Progress of a load: the dump's counters, with the ETA from the bytes read of the bytes to read."""

from __future__ import annotations

import time

from tibackup.dump.progress import Progress
from tibackup.units import human_duration, human_size


class LoadProgress(Progress):
    def __init__(self, total_bytes: int = 0, total_files: int = 0) -> None:
        super().__init__()
        self.total_bytes, self.total_files = total_bytes, total_files

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes / elapsed
        text = (
            f"{self.files}/{self.total_files} files  {self.rows:,} rows  {human_size(self.bytes)}"
            f"/{human_size(self.total_bytes)}  {human_size(rate)}/s"
        )
        if self.total_bytes and self.bytes:
            done = min(self.bytes / self.total_bytes, 0.999)
            text = f"{done * 100:4.1f}%  " + text + f"  ETA {human_duration(elapsed * (1 - done) / done)}"
        return text + f"  elapsed {human_duration(elapsed)}"
