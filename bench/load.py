"""Side-by-side load benchmark (``python bench/run.py --load``): tibackup load vs myloader vs one file.

The table is dumped once by each peer (tibackup dump, mydumper, mysqldump --databases); then, round
after round, each loader loads its dump into an empty database (dropped before every run, untimed):
``tibackup load -t N`` from a local folder (with and without its checkpoint) and streamed from S3,
``myloader -t N``, and ``mariadb < one file``. The median wall time, the ratio to myloader, the tool's
CPU and peak RSS are reported (bench/results/load-latest.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run import Case, show, timed
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

Tools = dict[str, tuple[list[str], dict[str, str]]]


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
            # myloader writes no binary log unless told -e; this is the same setting for tibackup.
            tools[f"tibackup load -t {threads} --params sql_log_bin=OFF"] = (
                [*local, "--params", "sql_log_bin=OFF"],
                env,
            )
            _run(["mydumper", *conn, "-p", server.password, "-t", threads, "-r", rows, "-B", db, "-o",
                  str(work / "my")], env)  # fmt: skip
            tools[f"myloader -t {threads}"] = (
                ["myloader", *conn, "-p", server.password, "-t", threads, "-d", str(work / "my")],
                env,
            )
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
        cases = {tool: Case(name, "load", tool, []) for tool in tools}
        for _ in range(args.repeat if peers else 1):
            for tool, (cmd, tool_env) in tools.items():
                _reset(server, db)
                cases[tool].runs.append(timed(cmd, tool_env))
                count = server.execute(f"SELECT COUNT(*) FROM `{db}`.`sbtest1`")[0][0]
                assert count == expected, f"{tool} loaded {count} rows, not {expected}"
        for case in cases.values():
            show(case)
        return list(cases.values())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, env=env, check=True)


def _reset(server: MariaDBServer, db: str) -> None:
    server.execute(f"DROP DATABASE IF EXISTS `{db}`")
    server.execute("DROP DATABASE IF EXISTS tibackup_load")


def load_report(cases: list[Case], meta: str) -> str:
    lines = [meta, "", "| data | tool | wall (median) | × myloader | tool CPU | peak RSS |",
             "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for case in cases:
        peer = next((c for c in cases if c.dataset == case.dataset and c.tool.startswith("myloader")), None)
        ratio = f"{case.wall / peer.wall:.2f}" if peer else "–"
        lines.append(
            f"| {case.dataset} | {case.tool} | {case.wall:.2f} s | {ratio} | {case.cpu:.2f} s | {case.rss:.0f} MB |"
        )
    return "\n".join(lines) + "\n"
