"""Side-by-side load benchmark (``python bench/run.py --load``): tibackup load vs myloader vs one file.

The table is dumped once by each peer (tibackup dump, mydumper, mysqldump --databases); then, round
after round, each loader loads its dump into an empty database (dropped before every run, untimed):
``tibackup load -t N`` from a local folder (with and without its checkpoint, with the binary log off,
with ``--no-defer-indexes``: the table's secondary keys in it from the start) and streamed from S3, ``myloader -t N`` with and without ``--enable-binlog``, and ``mariadb < one file``.
Rounds interleave the tools (one run of each per round), so a noisy neighbour slows all of them alike.
The median wall time, every run, the spread (half the range, in % of the median), the ratio to the
like-for-like peer (same binary-log setting: ``PEERS``; all run against the same server, whose
durability settings are in the report's first line), the tool's CPU, the server's CPU (mariadbd's
user + system time during the run: on a shared two-core machine the server is the bottleneck, and its
CPU is far steadier than wall time) and peak RSS are reported (bench/results/load-latest.md). The
default (1M rows, 3 rounds) takes a few minutes; ``--huge`` adds the 7M-row memory case (one run);
``--only REGEX`` runs only the tools whose name matches (an A/B in more rounds); ``--huge-ab`` loads
the 7M-row table with ``--no-defer-indexes`` too (several minutes more). ``--many`` adds two backups of
many tables (``many_tables``): 50 tables of 20k rows each with a secondary key, and four tables of
600k/250k/100k/50k rows with secondary keys of different sizes — the case where a table's keys can be
built while other tables still load. ``--ab-src DIR`` adds ``tibackup load`` run from another checkout's
``src`` (e.g. ``git archive main src | tar -x -C /tmp/old``) to every dataset: an A/B in the same rounds.
The report also shows how busy the ``-t`` sessions were: the mean number of the server's client
sessions running a statement (information_schema.PROCESSLIST, sampled every 50 ms) divided by ``-t``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.run import ROOT, Case, show, timed
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server
from testenv.sampledata import load_wide_table

Tools = dict[str, tuple[list[str], dict[str, str]]]
SERVER_CPU: dict[tuple[str, str], list[float]] = {}  # (dataset, tool) → mariadbd CPU seconds per run
FAILED: dict[tuple[str, str], int] = {}  # (dataset, tool) → runs that failed on a deadlock (run again)
BUSY: dict[tuple[str, str], list[float]] = {}  # (dataset, tool) → mean sessions running a statement / -t

# tool (name prefix) → its like-for-like peer (same binary-log setting); myloader writes no binlog
# unless --enable-binlog, tibackup and `mariadb <` write it unless sql_log_bin=OFF.
PEERS = {
    "tibackup load -t {t} --params sql_log_bin=OFF": "myloader -t {t}",
    "tibackup load -t {t} (streamed from S3)": "tibackup load -t {t} (local folder)",
    "tibackup load -t {t}": "myloader -t {t} --enable-binlog",
    "mariadb < one file": "tibackup load -t {t} (local folder)",
    "tibackup load -t {t} (from --ab-src)": "tibackup load -t {t} (local folder)",
}
# The many-table backups of --many: (dataset, database, [(table, rows, keys added beside k_1)]).
FOUR_TABLES = [  # the biggest last by name, so a load in name order would end on its long build
    ("a_tiny", 50_000, []),
    ("b_small", 100_000, ["KEY kpad (pad, k)"]),
    ("c_mid", 250_000, []),
    ("d_big", 600_000, ["KEY kc (c)"]),
]


def bench_load(
    name: str,
    db: str,
    server: MariaDBServer,
    s3: S3Server | None,
    args: argparse.Namespace,
    env: dict[str, str],
    *,
    peers: bool = True,
    tables: tuple[str, ...] = ("sbtest1",),
    full: bool = True,
) -> list[Case]:
    """``peers=False``: tibackup from a local folder only (the memory case); ``full=False``: tibackup
    (and --ab-src) against myloader --enable-binlog only (the many-table cases)."""
    threads, rows = str(args.threads), str(args.chunk_rows)
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    work = Path(tempfile.mkdtemp(prefix="tibackup-loadbench-"))
    tib = [sys.executable, "-m", "tibackup.cli.main"]
    expected = _rows(server, db, tables)
    local = [*tib, "load", *conn, "-t", threads, "-d", str(work / "tib"), "--loglevel", "warn"]
    tools: Tools = {f"tibackup load -t {threads} (local folder)": (local, env)}
    if args.ab_src:  # the same command, another checkout's code
        old = {**env, "PYTHONPATH": os.pathsep.join([str(Path(args.ab_src).resolve()), str(ROOT)])}
        tools[f"tibackup load -t {threads} (from --ab-src)"] = (local, old)
    try:
        _run([*tib, "dump", *conn, "-t", threads, "-r", rows, "-B", db, "-o", str(work / "tib"),
              "--loglevel", "warn"], env)  # fmt: skip
        if peers and full:
            tools[f"tibackup load -t {threads} --checkpoint=false"] = ([*local, "--checkpoint=false"], env)
            # The A/B of secondary keys after the data (the default) against keys in the table from
            # the start, both binary-log settings.
            tools[f"tibackup load -t {threads} --no-defer-indexes"] = ([*local, "--no-defer-indexes"], env)
            # myloader writes no binary log unless told -e; this is the same setting for tibackup.
            tools[f"tibackup load -t {threads} --params sql_log_bin=OFF"] = (
                [*local, "--params", "sql_log_bin=OFF"],
                env,
            )
            tools[f"tibackup load -t {threads} --params sql_log_bin=OFF --no-defer-indexes"] = (
                [*local, "--params", "sql_log_bin=OFF", "--no-defer-indexes"],
                env,
            )
        if peers:
            _run(["mydumper", *conn, "-p", server.password, "-t", threads, "-r", rows, "-B", db, "-o",
                  str(work / "my")], env)  # fmt: skip
            myloader = ["myloader", *conn, "-p", server.password, "-t", threads, "-d", str(work / "my")]
            if full:
                tools[f"myloader -t {threads}"] = (myloader, env)
            tools[f"myloader -t {threads} --enable-binlog"] = ([*myloader, "--enable-binlog"], env)
        if peers and full:
            with open(work / "one.sql", "wb") as out:
                subprocess.run(
                    ["mysqldump", *conn, "--single-transaction", "--databases", db], env=env, stdout=out,
                    check=True,
                )  # fmt: skip
            tools["mariadb < one file (mysqldump)"] = (
                ["sh", "-c", f"mariadb {' '.join(conn)} < {work / 'one.sql'}"],
                env,
            )
        if peers and full and s3 is not None:
            s3env = {**env, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
            s3flags = ["--s3.endpoint", s3.endpoint, "--s3.region", s3.region, "--s3.provider", "other"]
            url = f"s3://{args.bucket}/load-{db}-{work.name}"
            _run([*tib, "dump", *conn, "-t", threads, "-r", rows, "-B", db, "-o", url, *s3flags,
                  "--loglevel", "warn"], s3env)  # fmt: skip
            tools[f"tibackup load -t {threads} (streamed from S3)"] = (
                [*tib, "load", *conn, "-t", threads, "-d", url, *s3flags, "--loglevel", "warn"],
                s3env,
            )
        if not peers and args.huge_ab:  # the memory case's A/B: its keys in the table from the start
            tools[f"tibackup load -t {threads} --no-defer-indexes"] = ([*local, "--no-defer-indexes"], env)
        if args.only:  # --only REGEX: the tools of one A/B, more rounds in the same time
            tools = {tool: run for tool, run in tools.items() if re.search(args.only, tool)}
        cases = {tool: Case(name, "load", tool, []) for tool in tools}
        order = list(tools)
        for round_ in range(args.repeat if peers else 1):
            for tool in order[round_ % len(order) :] + order[: round_ % len(order)]:  # rotated per round
                cmd, tool_env = tools[tool]
                for attempt in range(3):  # myloader 0.10 gives up on a deadlock (no retry): run it again
                    _reset(server, db)
                    before = _server_cpu(server)
                    sampler = _Busy(server)
                    try:
                        run = timed(cmd, tool_env)
                    except SystemExit as exc:
                        if attempt == 2 or "Deadlock" not in str(exc):
                            raise
                        FAILED[(name, tool)] = FAILED.get((name, tool), 0) + 1
                        print(f"  {tool}: failed on a deadlock, run again", flush=True)
                        continue
                    finally:
                        busy = sampler.stop()
                    break
                cases[tool].runs.append(run)
                BUSY.setdefault((name, tool), []).append(busy / args.threads)
                if before is not None and (after := _server_cpu(server)) is not None:
                    SERVER_CPU.setdefault((name, tool), []).append(after - before)
                count = _rows(server, db, tables)
                assert count == expected, f"{tool} loaded {count} rows, not {expected}"
        for case in cases.values():
            show(case)
        return list(cases.values())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _rows(server: MariaDBServer, db: str, tables: tuple[str, ...]) -> int:
    union = " UNION ALL ".join(f"SELECT COUNT(*) AS n FROM `{db}`.`{t}`" for t in tables)
    return int(server.execute(f"SELECT SUM(n) FROM ({union}) AS counts")[0][0])


def many_tables(server: MariaDBServer, conn: Any, args: argparse.Namespace, env: dict[str, str]) -> list[Case]:
    """``--many``: 50 tables × 20k rows with KEY k_1 each (1M rows), and four tables of 600k/250k/100k/50k
    rows with keys of different sizes: tibackup (and --ab-src) against myloader --enable-binlog."""
    cases: list[Case] = []
    fifty = tuple(f"t{i:02d}" for i in range(50))
    if _missing_rows(server, "bench_many50", {t: 20_000 for t in fifty}):
        for t in fifty:
            load_wide_table(conn, "bench_many50", t, 20_000)
    cases += bench_load("50 tables × 20k rows", "bench_many50", server, None, args, env, tables=fifty, full=False)
    four = tuple(t for t, _, _ in FOUR_TABLES)
    if _missing_rows(server, "bench_four", {t: n for t, n, _ in FOUR_TABLES}):
        for t, n, keys in FOUR_TABLES:
            load_wide_table(conn, "bench_four", t, n)
            for key in keys:
                server.execute(f"ALTER TABLE `bench_four`.`{t}` ADD {key}")
    cases += bench_load("4 tables, keys of 3 sizes", "bench_four", server, None, args, env, tables=four, full=False)
    return cases


def _missing_rows(server: MariaDBServer, db: str, tables: dict[str, int]) -> bool:
    """The tables are not there with their rows (a former run may have left them)."""
    found = dict(
        server.execute(
            "SELECT TABLE_NAME, 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (db,)
        )
    )
    if set(tables) - set(found):
        return True
    return any(server.execute(f"SELECT MAX(id) FROM `{db}`.`{t}`")[0][0] != n for t, n in tables.items())


class _Busy:
    """Samples how many client sessions run a statement (PROCESSLIST, every 50 ms) while a tool runs."""

    def __init__(self, server: MariaDBServer) -> None:
        self._conn = server.connect()
        self._samples: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        cursor = self._conn.cursor()
        while not self._done.wait(0.05):
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' "
                "AND ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler')"
            )
            self._samples.append(int(cursor.fetchone()[0]))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        self._conn.close()
        return statistics.mean(self._samples) if self._samples else 0.0


def _run(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, env=env, check=True)


def _server_cpu(server: MariaDBServer) -> float | None:
    """mariadbd's user + system CPU seconds so far (None: not a local server of this benchmark)."""
    try:
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset(server: MariaDBServer, db: str) -> None:
    server.execute(f"DROP DATABASE IF EXISTS `{db}`")
    server.execute("DROP DATABASE IF EXISTS tibackup_load")


def peer_of(tool: str, threads: int) -> str | None:
    """The like-for-like peer a tool's time is compared with (``PEERS``), or None."""
    for prefix, peer in PEERS.items():
        if tool.startswith(prefix.format(t=threads)):
            return peer.format(t=threads)
    return None


def load_report(cases: list[Case], meta: str, threads: int) -> str:
    lines = [meta, "", "| data | tool | wall (median) | runs | spread | compared with | ratio | tool CPU "
             "| server CPU | sessions busy | peak RSS |", "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for case in cases:
        name = peer_of(case.tool, threads)
        peer = next((c for c in cases if c.dataset == case.dataset and c.tool == name), None)
        ratio, versus = (f"{case.wall / peer.wall:.2f}", name) if peer else ("–", "–")
        walls = [r.wall for r in case.runs]
        runs = " ".join(f"{w:.1f}" for w in walls)
        spread = f"±{50 * (max(walls) - min(walls)) / case.wall:.0f}%"
        server = SERVER_CPU.get((case.dataset, case.tool))
        server_cpu = f"{statistics.median(server):.2f} s" if server else "–"
        busy = BUSY.get((case.dataset, case.tool))
        busy_share = f"{100 * statistics.median(busy):.0f} %" if busy else "–"
        if failed := FAILED.get((case.dataset, case.tool)):
            runs += f" ({failed} failed on a deadlock, run again)"
        lines.append(
            f"| {case.dataset} | {case.tool} | {case.wall:.2f} s | {runs} | {spread} | {versus} | {ratio} "
            f"| {case.cpu:.2f} s | {server_cpu} | {busy_share} | {case.rss:.0f} MB |"
        )
    return "\n".join(lines) + "\n"
