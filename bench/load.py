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
the 7M-row table with ``--no-defer-indexes`` too (several minutes more).
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
from pathlib import Path

from bench.run import Case, show, timed
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

Tools = dict[str, tuple[list[str], dict[str, str]]]
SERVER_CPU: dict[tuple[str, str], list[float]] = {}  # (dataset, tool) → mariadbd CPU seconds per run
FAILED: dict[tuple[str, str], int] = {}  # (dataset, tool) → runs that failed on a deadlock (run again)

# tool (name prefix) → its like-for-like peer (same binary-log setting); myloader writes no binlog
# unless --enable-binlog, tibackup and `mariadb <` write it unless sql_log_bin=OFF.
PEERS = {
    "tibackup load -t {t} --params sql_log_bin=OFF": "myloader -t {t}",
    "tibackup load -t {t} (streamed from S3)": "tibackup load -t {t} (local folder)",
    "tibackup load -t {t}": "myloader -t {t} --enable-binlog",
    "mariadb < one file": "tibackup load -t {t} (local folder)",
}


def bench_load(
    name: str,
    db: str,
    server: MariaDBServer,
    s3: S3Server | None,
    args: argparse.Namespace,
    env: dict[str, str],
    *,
    peers: bool = True,
) -> list[Case]:
    """``peers=False``: tibackup from a local folder only (the memory case)."""
    threads, rows = str(args.threads), str(args.chunk_rows)
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    work = Path(tempfile.mkdtemp(prefix="tibackup-loadbench-"))
    tib = [sys.executable, "-m", "tibackup.cli.main"]
    expected = server.execute(f"SELECT COUNT(*) FROM `{db}`.`sbtest1`")[0][0]
    local = [*tib, "load", *conn, "-t", threads, "-d", str(work / "tib"), "--loglevel", "warn"]
    tools: Tools = {f"tibackup load -t {threads} (local folder)": (local, env)}
    try:
        _run([*tib, "dump", *conn, "-t", threads, "-r", rows, "-B", db, "-o", str(work / "tib"),
              "--loglevel", "warn"], env)  # fmt: skip
        if peers:
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
            _run(["mydumper", *conn, "-p", server.password, "-t", threads, "-r", rows, "-B", db, "-o",
                  str(work / "my")], env)  # fmt: skip
            myloader = ["myloader", *conn, "-p", server.password, "-t", threads, "-d", str(work / "my")]
            tools[f"myloader -t {threads}"] = (myloader, env)
            tools[f"myloader -t {threads} --enable-binlog"] = ([*myloader, "--enable-binlog"], env)
            with open(work / "one.sql", "wb") as out:
                subprocess.run(
                    ["mysqldump", *conn, "--single-transaction", "--databases", db], env=env, stdout=out,
                    check=True,
                )  # fmt: skip
            tools["mariadb < one file (mysqldump)"] = (
                ["sh", "-c", f"mariadb {' '.join(conn)} < {work / 'one.sql'}"],
                env,
            )
        if peers and s3 is not None:
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
                    try:
                        run = timed(cmd, tool_env)
                    except SystemExit as exc:
                        if attempt == 2 or "Deadlock" not in str(exc):
                            raise
                        FAILED[(name, tool)] = FAILED.get((name, tool), 0) + 1
                        print(f"  {tool}: failed on a deadlock, run again", flush=True)
                        continue
                    break
                cases[tool].runs.append(run)
                if before is not None and (after := _server_cpu(server)) is not None:
                    SERVER_CPU.setdefault((name, tool), []).append(after - before)
                count = server.execute(f"SELECT COUNT(*) FROM `{db}`.`sbtest1`")[0][0]
                assert count == expected, f"{tool} loaded {count} rows, not {expected}"
        for case in cases.values():
            show(case)
        return list(cases.values())
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
             "| server CPU | peak RSS |", "|---|---|---:|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for case in cases:
        name = peer_of(case.tool, threads)
        peer = next((c for c in cases if c.dataset == case.dataset and c.tool == name), None)
        ratio, versus = (f"{case.wall / peer.wall:.2f}", name) if peer else ("–", "–")
        walls = [r.wall for r in case.runs]
        runs = " ".join(f"{w:.1f}" for w in walls)
        spread = f"±{50 * (max(walls) - min(walls)) / case.wall:.0f}%"
        server = SERVER_CPU.get((case.dataset, case.tool))
        server_cpu = f"{statistics.median(server):.2f} s" if server else "–"
        if failed := FAILED.get((case.dataset, case.tool)):
            runs += f" ({failed} failed on a deadlock, run again)"
        lines.append(
            f"| {case.dataset} | {case.tool} | {case.wall:.2f} s | {runs} | {spread} | {versus} | {ratio} "
            f"| {case.cpu:.2f} s | {server_cpu} | {case.rss:.0f} MB |"
        )
    return "\n".join(lines) + "\n"
