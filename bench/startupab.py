"""A/B of tibackup's start-up: this checkout against another ``src`` folder (an earlier commit), with mydumper.

    git archive COMMIT src | tar -x -C /tmp/before    # plus the built _rowcodec*.so in src/tibackup/dump
    flock /tmp/tibackup-heavy.lock python3 bench/startupab.py --ab-src /tmp/before/src [--rounds 15]

Interleaved rounds, medians and spreads: first the start-up alone (bench/startup.py, to the first
connection attempt, for both sources; ``python -c pass``; ``mydumper --version``), then the whole dump
of the 1M-row table (``-t 2 -r 100000`` to local disk, as bench/run.py) by mydumper and both tibackups,
with the tool's CPU, the server's CPU and the machine's idle core-seconds. Its own MariaDB with a
128 MiB buffer pool, or the one of ``python -m testenv up`` with TIBACKUP_TEST_REUSE=1.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstat import server_pid  # noqa: E402
from bench.run import Run, fill_wide, timed  # noqa: E402
from testenv.mariadb import MariaDBServer  # noqa: E402


def _median(runs: list[Run], what: str) -> float:
    return statistics.median(getattr(r, what) for r in runs)


def _row(name: str, runs: list[Run], *, full: bool) -> str:
    walls = [r.wall for r in runs]
    cells = [f"{_median(runs, 'wall') * 1000:.1f} ms ({min(walls) * 1000:.1f}–{max(walls) * 1000:.1f})"]
    cells.append(f"{_median(runs, 'cpu') * 1000:.1f} ms")
    if full:
        cells += [f"{_median(runs, 'server_cpu'):.2f} s", f"{_median(runs, 'idle'):.2f}"]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ab-src", required=True, help="the other tibackup's src folder")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-dump", action="store_true", help="only the start-up rounds")
    parser.add_argument(
        "--basedir", default="/tmp/tibackup-startupab", help="the server's folder, kept for the next run"
    )
    args = parser.parse_args()
    sources = {"before": Path(args.ab_src).resolve(), "this checkout": ROOT / "src"}
    for src in sources.values():
        compileall.compile_dir(src / "tibackup", quiet=1)  # as an installed package runs: from bytecode
    if os.environ.get("TIBACKUP_TEST_REUSE") == "1" and os.environ.get("TIBACKUP_TEST_MYSQL_PORT"):
        server = MariaDBServer.attach(
            os.environ["TIBACKUP_TEST_MYSQL_HOST"], int(os.environ["TIBACKUP_TEST_MYSQL_PORT"])
        )
    else:
        server = MariaDBServer(args.basedir, buffer_pool_size="128M").start()
    work = Path(tempfile.mkdtemp(prefix="tibackup-startupab-"))
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    base |= {"MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
    envs = {name: {**base, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"} for name, src in sources.items()}
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    try:
        startup = {"python -c pass": ([sys.executable, "-c", "pass"], base),
                   "mydumper --version": (["mydumper", "--version"], base)}  # fmt: skip
        for name, env in envs.items():
            cmd = [
                sys.executable,
                str(ROOT / "bench" / "startup.py"),
                *conn,
                "-B",
                "db",
                "-o",
                str(work / "s"),
            ]
            startup[f"tibackup dump to its first connection attempt ({name})"] = (cmd, env)
        runs: dict[str, list[Run]] = {name: [] for name in startup}
        for _ in range(args.rounds):
            for name, (cmd, env) in startup.items():
                runs[name].append(timed(cmd, env))
        print("| command | wall (median, spread) | CPU |\n|---|---:|---:|")
        for name, rs in runs.items():
            print(_row(name, rs, full=False))
        if args.no_dump:
            return
        db_conn = server.connect()
        fill_wide(db_conn, "bench_wide", args.rows)
        db_conn.close()
        dump = ["-t", "2", "-r", "100000", "-B", "bench_wide", "-o"]
        tools = {"mydumper -t 2 -r 100000": (["mydumper", *conn, "-p", server.password, *dump], base)}
        for name, env in envs.items():
            cmd = [sys.executable, "-m", "tibackup.cli.main", "dump", *conn, *dump]
            tools[f"tibackup -t 2 -r 100000 ({name})"] = (cmd, env)
        pid = server_pid(server)
        runs = {name: [] for name in tools}
        for _ in range(args.rounds):
            for name, (cmd, env) in tools.items():
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                runs[name].append(
                    timed(
                        [*cmd, str(out), *(["--loglevel", "warn"] if "tibackup" in name else [])],
                        env,
                        pid=pid,
                    )
                )
        print(f"\n{args.rows // 1000}k rows, {args.rounds} interleaved rounds:\n")
        print(
            "| tool | wall (median, spread) | tool CPU | server CPU | idle core-s |\n|---|---:|---:|---:|---:|"
        )
        for name, rs in runs.items():
            print(_row(name, rs, full=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not os.environ.get("TIBACKUP_TEST_REUSE"):
            server.stop(remove=False)  # the loaded table stays for the next run


if __name__ == "__main__":
    main()
