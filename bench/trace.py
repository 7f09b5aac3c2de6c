"""Where a dump's wall time goes: summarise the trace of ``TIBACKUP_DUMP_TRACE`` (tibackup/dump/trace.py).

    TIBACKUP_DUMP_TRACE=/tmp/t.trace tibackup dump ... ; python bench/trace.py /tmp/t.trace

Prints, per thread, the time spent in each step and its share of the thread's life; when the first
step began (start-up and imports before it); the gaps between the steps the trace covers; how often
both workers waited on the server at once (the ``query`` step: a chunk's first rows); and the order in
which the chunks were handed out.
"""

from __future__ import annotations

import sys
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


if __name__ == "__main__":
    print(summary(read(sys.argv[1])))
