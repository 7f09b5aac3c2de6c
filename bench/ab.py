"""Interleaved A/B of whole commands: wall time, the command's own CPU, peak RSS and page faults.

Any commands, given whole::

    flock /tmp/tibackup-heavy.lock python3 bench/ab.py --rounds 15 --clean /tmp/out \\
        "env PYTHONPATH=/tmp/before/src python -m tibackup.cli.main dump ... -o /tmp/out" \\
        "python -m tibackup.cli.main dump ... -o /tmp/out" \\
        "mydumper ... -o /tmp/out"

or, with ``--ab-src``, this checkout against another ``src`` folder (an earlier commit), with mydumper::

    git archive COMMIT src | tar -x -C /tmp/before    # plus the built _rowcodec*.so in src/tibackup/dump
    flock /tmp/tibackup-heavy.lock python3 bench/ab.py --ab-src /tmp/before/src [--rounds 15] [--no-dump]

which compares first the start-up alone (bench/startup.py, to the first connection attempt, for both
sources; ``python -c pass``; ``mydumper --version``; no server needed), then the whole dump of the
1M-row table (``-t 2 -r 100000`` to local disk, as bench/run.py) by mydumper and both tibackups, with
the server's CPU and the machine's idle core-seconds too. That server is its own MariaDB with a
128 MiB buffer pool, or the one of ``python -m testenv up`` with TIBACKUP_TEST_REUSE=1.

The commands take turns round after round (a slow moment of a shared machine hits them alike; run it
under the heavy-work lock). Each command's CPU (user + system), peak RSS and minor page faults are
its own (``measure``), so they hold on a busy machine where the wall time does not. For a
change to the C reader, A is a copy of ``src`` with the old extension built in it (pytest's and
tibackup's ``src`` come first on the path, so only PYTHONPATH picks the copy).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstat import idle_seconds, server_cpu  # noqa: E402

# A command to compare: what to run and its environment (None: this one's).
Command = tuple[list[str], dict[str, str] | None]


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    wall: float  # seconds
    cpu: float  # the command's own user + system seconds
    peak_rss_mb: float
    faults: int  # minor page faults
    server_cpu: float = 0.0  # the server's user + system seconds during the run (with its pid)
    idle: float = 0.0  # idle core-seconds of the machine during the run (with the server's pid)


def measure(cmd: list[str], env: dict[str, str] | None, pid: int | None = None) -> Sample:
    """Run ``cmd`` once; with the server's ``pid``, also its CPU and the machine's idle time meanwhile.

    The peak RSS and page faults are GNU time's of the command alone: a child forked from this Python
    starts with this Python's pages, so its own ``ru_maxrss`` would be at least this script's (15 MB
    for ``true``). The CPU is ``wait4``'s, to the microsecond, of GNU time and the command (time's own
    share, ~1.5 ms here, is the same for every command; GNU time itself prints CPU to 10 ms)."""
    with tempfile.NamedTemporaryFile("r", suffix=".usage") as usage_file:
        wrapped = ["/usr/bin/time", "-f", "%M %R", "-o", usage_file.name, *cmd]
        server0, idle0 = server_cpu(pid), idle_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        server1, idle1 = server_cpu(pid), idle_seconds()
        if status != 0:
            raise SystemExit(f"failed ({status}): {shlex.join(cmd)}")
        peak_kb, faults = usage_file.read().split()[-2:]
    cpu = usage.ru_utime + usage.ru_stime
    spent = (server1 - server0, idle1 - idle0) if pid else (0.0, 0.0)
    return Sample(wall, cpu, int(peak_kb) / 1024, int(faults), *spent)


def interleave(
    commands: dict[str, Command], rounds: int, before: Callable[[], None] = lambda: None, pid: int | None = None
) -> dict[str, list[Sample]]:
    """``rounds`` rounds of every command in turn; ``before`` runs before each command (e.g. a clean-up)."""
    runs: dict[str, list[Sample]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (cmd, env) in commands.items():
            before()
            runs[name].append(measure(cmd, env, pid))
    return runs


# The columns a table may show: their title, and the cell made of every round's values.
COLUMNS: dict[str, tuple[str, Callable[[list[float]], str]]] = {
    "cpu": ("own CPU", lambda v: f"{statistics.median(v) * 1000:.1f} ms"),
    "peak_rss_mb": ("peak RSS", lambda v: f"{max(v):.1f} MB"),
    "faults": ("page faults", lambda v: f"{statistics.median(v):.0f}"),
    "server_cpu": ("server CPU", lambda v: f"{statistics.median(v):.2f} s"),
    "idle": ("idle core-s", lambda v: f"{statistics.median(v):.2f}"),
}


def table(runs: dict[str, list[Sample]], columns: tuple[str, ...]) -> str:
    """A markdown table: per command the median wall time with its spread, then ``columns``."""
    lines = ["| command | wall (median, spread) | " + " | ".join(COLUMNS[c][0] for c in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]  # fmt: skip
    for name, samples in runs.items():
        walls = [s.wall * 1000 for s in samples]
        cells = [f"{statistics.median(walls):.1f} ms ({min(walls):.1f}–{max(walls):.1f})"]
        cells += [COLUMNS[c][1]([getattr(s, c) for s in samples]) for c in columns]
        lines.append(f"| {name[:120]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_commands(args: argparse.Namespace) -> None:
    """The commands as given, each emptying the ``--clean`` folders before it runs."""

    def clean() -> None:
        for folder in args.clean:
            shutil.rmtree(folder, ignore_errors=True)

    commands: dict[str, Command] = {command: (shlex.split(command), None) for command in args.commands}
    print(table(interleave(commands, args.rounds, clean), ("cpu", "peak_rss_mb", "faults")))


def compare_sources(args: argparse.Namespace) -> None:
    """This checkout against ``--ab-src``: the start-up alone, then (unless ``--no-dump``) the 1M-row dump."""
    sources = {"before": Path(args.ab_src).resolve(), "this checkout": ROOT / "src"}
    for src in sources.values():
        compileall.compile_dir(src / "tibackup", quiet=1)  # as an installed package runs: from bytecode
    work = Path(tempfile.mkdtemp(prefix="tibackup-ab-"))
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    envs = {name: {**base, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"} for name, src in sources.items()}
    try:
        startup: dict[str, Command] = {"python -c pass": ([sys.executable, "-c", "pass"], base),
                                       "mydumper --version": (["mydumper", "--version"], base)}  # fmt: skip
        for name, env in envs.items():  # stops at its first connection attempt: no server is asked
            cmd = [sys.executable, str(ROOT / "bench" / "startup.py"), "-h", "127.0.0.1", "-P", "1",
                   "-u", "root", "-B", "db", "-o", str(work / "s")]  # fmt: skip
            startup[f"tibackup dump to its first connection attempt ({name})"] = (cmd, env)
        print(table(interleave(startup, args.rounds), ("cpu",)))
        if not args.no_dump:
            _compare_dumps(args, envs, base, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compare_dumps(args: argparse.Namespace, envs: dict[str, dict[str, str]], base: dict[str, str], work: Path) -> None:
    from bench.procstat import server_pid
    from bench.run import fill_wide
    from testenv.mariadb import MariaDBServer

    if os.environ.get("TIBACKUP_TEST_REUSE") == "1" and os.environ.get("TIBACKUP_TEST_MYSQL_PORT"):
        server = MariaDBServer.attach(
            os.environ["TIBACKUP_TEST_MYSQL_HOST"], int(os.environ["TIBACKUP_TEST_MYSQL_PORT"])
        )
    else:
        server = MariaDBServer(args.basedir, buffer_pool_size="128M").start()
    try:
        db_conn = server.connect()
        fill_wide(db_conn, "bench_wide", args.rows)
        db_conn.close()
        out = str(work / "out")
        conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
        dump = ["-t", "2", "-r", "100000", "-B", "bench_wide", "-o", out]
        password = {"MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
        tools: dict[str, Command] = {
            "mydumper -t 2 -r 100000": (["mydumper", *conn, "-p", server.password, *dump], base)
        }
        for name, env in envs.items():
            cmd = [sys.executable, "-m", "tibackup.cli.main", "dump", *conn, *dump, "--loglevel", "warn"]
            tools[f"tibackup -t 2 -r 100000 ({name})"] = (cmd, {**env, **password})
        runs = interleave(tools, args.rounds, lambda: shutil.rmtree(out, ignore_errors=True), server_pid(server))
        print(f"\n{args.rows // 1000}k rows, {args.rounds} interleaved rounds:\n")
        print(table(runs, ("cpu", "server_cpu", "idle")))
    finally:
        if not os.environ.get("TIBACKUP_TEST_REUSE"):
            server.stop(remove=False)  # the loaded table stays for the next run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clean", action="append", default=[], help="a folder emptied before each run")
    parser.add_argument("--ab-src", help="compare this checkout with that tibackup src folder instead")
    parser.add_argument("--rows", type=int, default=1_000_000, help="--ab-src: the dumped table's rows")
    parser.add_argument("--no-dump", action="store_true", help="--ab-src: only the start-up rounds")
    parser.add_argument(  # the former bench/startupab.py's folder, so its loaded table is used again
        "--basedir", default="/tmp/tibackup-startupab", help="--ab-src: the server's folder, kept for the next run"
    )
    parser.add_argument("commands", nargs="*", help="the commands to compare (without --ab-src)")
    args = parser.parse_args()
    if bool(args.ab_src) == bool(args.commands):
        parser.error("give either the commands to compare or --ab-src SRC, not both")
    if args.ab_src:
        compare_sources(args)
    else:
        compare_commands(args)


if __name__ == "__main__":
    main()
