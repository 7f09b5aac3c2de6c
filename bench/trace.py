"""Where a dump's wall time goes: summarise the trace of ``TIBACKUP_DUMP_TRACE`` (tibackup/dump/trace.py).

    TIBACKUP_DUMP_TRACE=/tmp/t.trace tibackup dump ... ; python bench/trace.py /tmp/t.trace
    python bench/trace.py --run 9 --clean /tmp/out -- python -m tibackup.cli.main dump ... -o /tmp/out

``--run N`` runs the command N times (emptying ``--clean DIR`` before each) with the trace on and the
process's start taken from this one's clock, and prints the median, fastest and slowest of each phase
of the whole command: start-up (until the first step), connect and catalog, the consistency lock, the
time from there to the first data query (plans, schemas queued before the data), the data, the end
(from the last file to the trace written: manifest, metadata, sessions closed) and the exit (from the
trace written until the process is gone), then the summary of the last run.

Prints, per thread, the time spent in each step and its share of the thread's life; when the first
step began (start-up and imports before it); the gaps between the steps the trace covers; how often
both workers waited on the server at once (the ``query`` step: a chunk's first rows); and the order in
which the chunks were handed out.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass


@dataclass
class Step:
    thread: str
    start: float
    duration: float
    step: str
    detail: str

    @property
    def end(self) -> float:
        return self.start + self.duration


def read(path: str) -> list[Step]:
    steps = []
    with open(path) as trace:
        for line in trace:
            thread, start, duration, step, *detail = line.split(maxsplit=4)
            steps.append(
                Step(thread, float(start), float(duration), step, detail[0].strip() if detail else "")
            )
    return steps


def overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Total time both interval lists cover at once."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0.0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def summary(steps: list[Step]) -> str:
    lines: list[str] = []
    first, last = min(s.start for s in steps), max(s.end for s in steps)
    lines.append(f"first traced step at {first:.0f} ms after the process started; last ends at {last:.0f} ms")
    if any(s.step == "catalog" for s in steps) and any(s.step == "lock" for s in steps):
        lines.append("phases: " + "; ".join(f"{k} {v:.1f} ms" for k, v in phases(steps).items()))
    for s in steps:
        if s.thread == "MainThread":
            lines.append(f"  main  {s.start:8.1f} +{s.duration:7.1f} ms  {s.step} {s.detail}")
    by_thread: dict[str, list[Step]] = defaultdict(list)
    for s in steps:
        by_thread[s.thread].append(s)
    lines.append("per thread: ms in each step (share of the span from its first to its last step)")
    for thread, own in sorted(by_thread.items()):
        if thread == "MainThread":
            continue
        life = max(s.end for s in own) - min(s.start for s in own)
        totals: dict[str, float] = defaultdict(float)
        for s in own:
            totals[s.step] += s.duration
        parts = ", ".join(
            f"{k} {v:.0f} ({v / life:.0%})" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"  {thread:10} {min(s.start for s in own):7.1f}..{max(s.end for s in own):7.1f}: {parts}"
        )
    workers = sorted(t for t in by_thread if t.startswith("dump-"))
    if len(workers) >= 2:
        waits = [[(s.start, s.end) for s in by_thread[w] if s.step == "query"] for w in workers[:2]]
        fetch = [
            [(s.start, s.end) for s in by_thread[w] if s.step in ("query", "fetch")] for w in workers[:2]
        ]
        idle = [[(s.start, s.end) for s in by_thread[w] if s.step == "idle"] for w in workers[:2]]
        lines.append(
            f"both workers in a chunk's first query at once: {overlap(*waits):.0f} ms; both fetching at once: "
            f"{overlap(*fetch):.0f} ms; both idle at once: {overlap(*idle):.0f} ms"
        )
    order = [f"{s.thread[-1]}:{s.detail}" for s in steps if s.step == "query"]
    lines.append("chunk order (worker:table#chunk): " + " ".join(order))
    return "\n".join(lines)


DATA_STEPS = ("query", "fetch", "write", "close", "commit", "schema")


def phases(steps: list[Step], wall_ms: float | None = None) -> dict[str, float]:
    """The whole command's phases in ms (see the module); ``wall_ms``: the command's wall time, for
    the exit after the trace was written."""
    first = min(s.start for s in steps)
    catalog = next(s for s in steps if s.step == "catalog")
    lock = next(s for s in steps if s.step == "lock")
    data = [s for s in steps if s.step in DATA_STEPS]
    first_query = min((s.start for s in steps if s.step == "query"), default=lock.end)
    data_end = max((s.end for s in data), default=lock.end)
    end = next((s.start for s in steps if s.step == "end"), max(s.end for s in steps))
    result = {
        "start-up (to the first step)": first,
        "connect + catalog": catalog.end - first,
        "consistency lock": lock.end - catalog.end,
        "lock to the first data query": first_query - lock.end,
        "data (first query to last file)": data_end - first_query,
        "end (last file to trace written)": end - data_end,
    }
    if wall_ms is not None:
        result["exit (trace written to process gone)"] = wall_ms - end
        result["wall"] = wall_ms
    return result


def run(times: int, clean: str, command: list[str]) -> str:
    path = (clean.rstrip("/") or "dump") + ".trace"  # beside the output folder, not in it
    env = {**os.environ, "TIBACKUP_DUMP_TRACE": path}
    runs: list[dict[str, float]] = []
    for _ in range(times):
        if clean:
            shutil.rmtree(clean, ignore_errors=True)
        started = time.perf_counter()  # CLOCK_MONOTONIC, as the child's time.perf_counter()
        env["TIBACKUP_DUMP_TRACE_ORIGIN"] = repr(started)
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        runs.append(phases(read(path), (time.perf_counter() - started) * 1000))
    lines = [f"{times} runs, ms: median (fastest-slowest)"]
    for name in runs[0]:
        values = [r[name] for r in runs]
        lines.append(f"  {name:40} {statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})")
    return "\n".join(lines) + "\n" + summary(read(path))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        rest = sys.argv[3:]
        folder = rest[1] if rest[:1] == ["--clean"] else ""
        rest = rest[2:] if folder else rest
        print(run(int(sys.argv[2]), folder, rest[1:] if rest[:1] == ["--"] else rest))
    else:
        print(summary(read(sys.argv[1])))
