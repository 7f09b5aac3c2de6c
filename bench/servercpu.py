"""The server's work for one dump, thread by thread: mydumper against tibackup and its variants (issue 12).

Runs the 7M-row dump (``bench_huge.sbtest1``, ``-t 2 -r 100000`` to local disk) with each tool in turn,
round after round, and records for every run mariadbd's user and system CPU and its voluntary and
involuntary context switches, its time on a CPU and runnable but waiting for one (schedstat),
summed over its threads (/proc/PID/task/*/stat, status and schedstat; a thread
that exits during a run is lost, MariaDB's thread cache keeps connection threads). ``--top`` also
prints the threads whose CPU grew most in each run (by thread id and name).

Variants of tibackup run through ``bench/variant.py`` (a socket receive buffer, the halves and quarters
of the last chunks off), so the product code is measured as it is:

    flock /tmp/tibackup-heavy.lock python bench/servercpu.py --rounds 3 --variant rcvbuf=4194304
    python bench/servercpu.py --prepare         # start the server and load the table only

The server lives in ``--basedir`` (default /tmp/tibackup-servercpu, 128 MiB pool) and is left running
(``--stop`` stops it), so the 7M rows are loaded once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import fill_wide  # noqa: E402
from testenv.mariadb import MariaDBServer  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
COUNTERS = ("user", "sys", "vol", "invol", "oncpu", "runq")


def threads(pid: int) -> dict[int, tuple[str, list[float]]]:
    """Per thread of ``pid``: its name and [user s, system s, voluntary, involuntary switches, s on a
    CPU, s runnable but waiting for one] (stat's ticks; schedstat's nanoseconds)."""
    out: dict[int, tuple[str, list[float]]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as file:
                head, rest = file.read().rsplit(")", 1)
            fields = rest.split()
            with open(f"/proc/{pid}/task/{tid}/status") as file:
                status = dict(line.split(":", 1) for line in file if ":" in line)
            with open(f"/proc/{pid}/task/{tid}/schedstat") as file:
                oncpu, runq = file.read().split()[:2]
        except OSError:
            continue  # the thread ended meanwhile
        out[int(tid)] = (head.split("(", 1)[1], [
            int(fields[11]) / _TICK, int(fields[12]) / _TICK,
            int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]),
            int(oncpu) / 1e9, int(runq) / 1e9,
        ])  # fmt: skip
    return out


def delta(
    before: dict[int, tuple[str, list[float]]], after: dict[int, tuple[str, list[float]]]
) -> dict[int, tuple[str, list[float]]]:
    """What each thread did between two snapshots (a new thread: all of its counters)."""
    zero = [0.0] * len(COUNTERS)
    return {
        tid: (name, [a - b for a, b in zip(values, before.get(tid, (name, zero))[1], strict=True)])
        for tid, (name, values) in after.items()
    }


def run_once(cmd: list[str], env: dict[str, str], pid: int, top: int) -> tuple[float, list[float]]:
    """One dump: its wall time and the server's summed counters."""
    before = threads(pid)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    per_thread = delta(before, threads(pid))
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')[-2000:]}")
    sums = [sum(v[i] for _, v in per_thread.values()) for i in range(len(COUNTERS))]
    if top:
        busiest = sorted(per_thread.items(), key=lambda item: -(item[1][1][0] + item[1][1][1]))[:top]
        for tid, (name, v) in busiest:
            print(f"      tid {tid} {name:16} user {v[0]:.2f} sys {v[1]:.2f} vol {v[2]:.0f} invol {v[3]:.0f}")
    return wall, sums


def commands(server: MariaDBServer, db: str, out: Path, variants: list[str]) -> dict[str, list[str]]:
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    common = [*conn, "-t", "2", "-r", "100000", "-B", db, "-o", str(out)]
    tools = {
        "mydumper": ["mydumper", *common, "-p", server.password],
        "tibackup": [sys.executable, "-m", "tibackup.cli.main", "dump", *common, "--loglevel", "warn"],
    }
    for variant in variants:
        tools[f"tibackup {variant}"] = [
            sys.executable, str(ROOT / "bench" / "variant.py"), variant, "dump", *common, "--loglevel", "warn",
        ]  # fmt: skip
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--basedir", default="/tmp/tibackup-servercpu")
    parser.add_argument("--port", type=int, default=33917)
    parser.add_argument("--db", default="bench_huge", help="the database of the table (sbtest1)")
    parser.add_argument("--rows", type=int, default=7_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], help="bench/variant.py's variants")
    parser.add_argument("--only-variants", action="store_true", help="no mydumper, no plain tibackup")
    parser.add_argument("--top", type=int, default=0, help="print the N busiest server threads of each run")
    parser.add_argument("--prepare", action="store_true", help="start the server and load the table only")
    parser.add_argument("--stop", action="store_true", help="stop the server and exit")
    args = parser.parse_args()

    server = MariaDBServer(args.basedir, port=args.port, buffer_pool_size="128M")
    if args.stop:
        server.stop()
        return
    try:
        server.execute("SELECT 1")
    except Exception:
        server.start(detach=True)
    conn = server.connect()
    fill_wide(conn, args.db, args.rows)
    conn.close()
    if args.prepare:
        return
    pid = int(server.pid_file.read_text().strip())
    env = {**os.environ, "MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = Path(tempfile.mkdtemp(prefix="tibackup-servercpu-")) / "out"
    tools = commands(server, args.db, out, args.variant)
    if args.only_variants:
        tools = {k: v for k, v in tools.items() if k.startswith("tibackup ")}
    results: dict[str, list[tuple[float, list[float]]]] = {tool: [] for tool in tools}
    print(f"{time.strftime('%H:%M:%S UTC', time.gmtime())} load {os.getloadavg()[0]:.2f}", flush=True)
    for i in range(args.rounds):
        for tool, cmd in tools.items():
            shutil.rmtree(out, ignore_errors=True)
            wall, sums = run_once(cmd, env, pid, args.top)
            results[tool].append((wall, sums))
            print(f"  round {i + 1} {tool:28} wall {wall:5.2f} s  user {sums[0]:.2f} sys {sums[1]:.2f} "
                  f"vol {sums[2]:.0f} invol {sums[3]:.0f} on-CPU {sums[4]:.2f} run-queue {sums[5]:.2f}", flush=True)  # fmt: skip
    shutil.rmtree(out.parent, ignore_errors=True)
    print(f"{time.strftime('%H:%M:%S UTC', time.gmtime())} medians of {args.rounds} interleaved rounds:")
    print("| tool | wall | server user | server sys | voluntary | involuntary | on a CPU | waiting for a CPU |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    for tool, runs in results.items():
        walls = [w for w, _ in runs]
        med = [statistics.median(s[i] for _, s in runs) for i in range(len(COUNTERS))]
        print(f"| {tool} | {statistics.median(walls):.2f} s ({min(walls):.2f}–{max(walls):.2f}) | {med[0]:.2f} s | "
              f"{med[1]:.2f} s | {med[2] / 1000:.1f}k | {med[3] / 1000:.1f}k | {med[4]:.2f} s | {med[5]:.2f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
