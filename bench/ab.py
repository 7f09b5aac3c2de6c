"""Interleaved A/B of whole commands: wall time, the command's own CPU, peak RSS and page faults.

    python bench/ab.py --rounds 15 --clean /tmp/out \\
        "env PYTHONPATH=/tmp/before/src python -m tibackup.cli.main dump ... -o /tmp/out" \\
        "python -m tibackup.cli.main dump ... -o /tmp/out" \\
        "mydumper ... -o /tmp/out"

The commands take turns round after round (a slow moment of a shared machine hits them alike; run it
under the heavy-work lock). Each command's CPU (user + system), peak RSS and minor page faults are
its own (``wait4``'s rusage), so they hold on a busy machine where the wall time does not. For a
change to the C reader, A is a copy of ``src`` with the old extension built in it (pytest's and
tibackup's ``src`` come first on the path, so only PYTHONPATH picks the copy).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clean", action="append", default=[], help="a folder emptied before each run")
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float, float, int]]] = {c: [] for c in args.commands}
    for _ in range(args.rounds):
        for command in args.commands:
            for folder in args.clean:
                shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            proc = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if status != 0:
                raise SystemExit(f"failed ({status}): {command}")
            runs[command].append(
                (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, usage.ru_minflt)
            )
    for command, values in runs.items():
        wall = [v[0] * 1000 for v in values]
        cpu = [v[1] * 1000 for v in values]
        print(command[:120])
        print(
            f"  wall {statistics.median(wall):6.1f} ms ({min(wall):.0f}-{max(wall):.0f})"
            f"  cpu {statistics.median(cpu):6.1f} ms ({min(cpu):.0f}-{max(cpu):.0f})"
            f"  peak RSS {max(v[2] for v in values):5.1f} MB"
            f"  page faults {statistics.median(v[3] for v in values):7.0f}"
        )


if __name__ == "__main__":
    main()
