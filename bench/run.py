"""Side-by-side dump benchmark: tibackup vs mydumper vs mysqldump vs the C client's plain SELECT (the floor).

Every tool dumps the same data from the same server in the same run; each case is run ``--repeat``
times, the tools taking turns (round after round, so a slow moment of a shared machine hits them alike),
and the median wall time is reported with the ratio to mydumper and to the floor, the tool's own CPU
time (user + system) and its peak resident memory (GNU time). tibackup runs from compiled bytecode, as
an installed package does (PYTHONDONTWRITEBYTECODE is dropped from its environment).

    python bench/run.py                    # 1M-row table + 50 mixed tables, local disk and S3
    python bench/run.py --huge             # also the memory case: a table 10x the buffer pool
    python bench/run.py --rows 200000 --repeat 1   # quick look

Servers: its own MariaDB (64 MiB buffer pool) and SeaweedFS, or the ones of `python -m testenv up` when
TIBACKUP_TEST_REUSE=1 and the TIBACKUP_TEST_* variables are set. Results: bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testenv.mariadb import MariaDBServer  # noqa: E402
from testenv.s3 import S3Server, clean_aws_env, make_s3_server  # noqa: E402
from testenv.sampledata import load_many_tables, load_wide_table  # noqa: E402


@dataclass
class Run:
    wall: float
    peak_rss_mb: float
    cpu: float  # user + system seconds of the tool


@dataclass
class Case:
    dataset: str
    target: str
    tool: str
    runs: list[Run]
    bytes_out: int = 0

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)


def timed(cmd: list[str], env: dict[str, str], stdout_path: Path | None = None) -> Run:
    """Wall time, and the peak RSS of the tool itself via GNU time (a forked child's own rusage would
    count this benchmark's pages, shared until exec)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name, *cmd]
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            start = time.perf_counter()
            proc = subprocess.run(wrapped, stdout=out, stderr=subprocess.PIPE, env=env)
            wall = time.perf_counter() - start
        finally:
            if stdout_path:
                out.close()  # type: ignore[union-attr]
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            raise SystemExit(
                f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}"
            )
        peak_kb, user, system = rss.read().strip().splitlines()[-1].split()
    return Run(wall, int(peak_kb) / 1024, float(user) + float(system))


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_dataset(
    name: str,
    db: str,
    tables: list[str],
    server: MariaDBServer,
    s3: S3Server | None,
    args: argparse.Namespace,
) -> list[Case]:
    clean_aws_env()  # no stray AWS_* settings from the machine; S3 cases get exactly their own
    env = {**os.environ, "MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    threads, rows = str(args.threads), str(args.chunk_rows)
    work = Path(tempfile.mkdtemp(prefix="tibackup-bench-"))
    select_all = "; ".join(f"SELECT * FROM `{db}`.`{t}`" for t in tables)
    tools: dict[str, list[str]] = {
        "floor (mariadb client SELECT *)": ["mariadb", *conn, "--quick", "-N", "-e", select_all],
        "mysqldump": ["mysqldump", *conn, "--single-transaction", "--skip-lock-tables", db],
        f"mydumper -t {threads} -r {rows}": ["mydumper", "-h", server.host, "-P", str(server.port), "-u", server.user,
                                             "-p", server.password, "-t", threads, "-r", rows, "-B", db, "-o", "{out}"],
        f"tibackup -t {threads} -r {rows}": [sys.executable, "-m", "tibackup.cli.main", "dump", *conn, "-t", threads,
                                             "-r", rows, "-B", db, "-o", "{out}", "--loglevel", "warn"],
        f"tibackup -t {threads} -r {rows} --read-mode stream": [
            sys.executable, "-m", "tibackup.cli.main", "dump", *conn, "-t", threads, "-r", rows, "-B", db, "-o",
            "{out}", "--loglevel", "warn", "--read-mode", "stream"],
        f"tibackup -t {threads} -r {rows} --read-mode bulk": [
            sys.executable, "-m", "tibackup.cli.main", "dump", *conn, "-t", threads, "-r", rows, "-B", db, "-o",
            "{out}", "--loglevel", "warn", "--read-mode", "bulk"],
    }  # fmt: skip
    local = {tool: Case(name, "local disk", tool, []) for tool in tools}
    for _ in range(args.repeat):
        for tool, template in tools.items():
            case = local[tool]
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [part.replace("{out}", str(out)) for part in template]
            to_file = out.with_suffix(".sql") if "{out}" not in " ".join(template) else None
            case.runs.append(timed(cmd, env, to_file))
            case.bytes_out = folder_size(out) if out.exists() else (to_file.stat().st_size if to_file else 0)
            if to_file:
                to_file.unlink()
    cases = list(local.values())
    for case in cases:
        show(case)
    if s3 is not None:
        s3env = {**env, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
        s3flags = ["--s3.endpoint", s3.endpoint, "--s3.region", s3.region, "--s3.provider", "other"]
        for tool, cmd_for in {
            f"tibackup -t {threads} -r {rows} (direct)": lambda prefix: [
                sys.executable, "-m", "tibackup.cli.main", "dump", *conn, "-t", threads, "-r", rows, "-B", db,
                "-o", f"s3://{args.bucket}/{prefix}", *s3flags, "--loglevel", "warn"],
            f"mydumper -t {threads} -r {rows} + upload": lambda prefix: [
                "sh", "-c", " && ".join([
                    f"rm -rf {work}/up && mydumper -h {server.host} -P {server.port} -u {server.user} -p \"$MYSQL_PWD\" "
                    f"-t {threads} -r {rows} -B {db} -o {work}/up",
                    f"{sys.executable} {ROOT}/bench/upload.py {work}/up s3://{args.bucket}/{prefix} {s3.endpoint} "
                    f"{s3.region}"])],
        }.items():  # fmt: skip
            case = Case(name, "S3", tool, [])
            for i in range(args.repeat):
                slug = "".join(ch if ch.isalnum() else "-" for ch in name)
                case.runs.append(timed(cmd_for(f"{slug}-{len(cases)}-{i}"), s3env))
            show(case)
            cases.append(case)
    shutil.rmtree(work, ignore_errors=True)
    return cases


def show(case: Case) -> None:
    print(
        f"  {case.dataset:>10} | {case.target:10} | {case.tool:44} | {case.wall:6.2f} s | "
        f"{case.cpu:6.2f} s | {case.rss:6.1f} MB",
        flush=True,
    )


def report(cases: list[Case], meta: str) -> str:
    lines = [meta, "", "| data | target | tool | wall (median) | × mydumper | × floor | tool CPU | peak RSS | output |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for case in cases:
        peers = [c for c in cases if c.dataset == case.dataset]
        mydumper = next((c for c in peers if c.tool.startswith("mydumper") and c.target == case.target), None)
        floor = next((c for c in peers if c.tool.startswith("floor")), None)
        ratio_m = f"{case.wall / mydumper.wall:.2f}" if mydumper else "–"
        ratio_f = f"{case.wall / floor.wall:.2f}" if floor else "–"
        size = f"{case.bytes_out / 1e6:.1f} MB" if case.bytes_out else "–"
        lines.append(
            f"| {case.dataset} | {case.target} | {case.tool} | {case.wall:.2f} s | {ratio_m} | {ratio_f} | "
            f"{case.cpu:.2f} s | {case.rss:.0f} MB | {size} |"
        )
    return "\n".join(lines) + "\n"


def run_load_bench(server: MariaDBServer, conn: Any, s3: S3Server | None, args: argparse.Namespace) -> None:
    """``--load``: bench/load.py on the wide table (and the huge one with --huge); load-latest.md."""
    from bench.load import bench_load, load_report

    clean_aws_env()
    env = {**os.environ, "MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cases = bench_load(f"{args.rows // 1000}k rows", "bench_wide", server, s3, args, env)
    if args.huge:
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_huge")
        conn.select_db("bench_huge")
        load_wide_table(conn, "bench_huge", "sbtest1", 7_000_000)  # ~650 MB of rows
        cases += bench_load("7M rows (memory)", "bench_huge", server, None, args, env, peers=False)
    version = subprocess.run(["myloader", "--version"], capture_output=True, text=True).stdout.strip()
    meta = (
        f"Load benchmark of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; "
        f"MariaDB {server.execute('SELECT VERSION()')[0][0]} on the same machine; {version}; "
        f"S3: {'SeaweedFS local' if s3 else 'skipped'}; median of {args.repeat} interleaved rounds (one run of "
        "each tool per round; the huge table: one run)."
    )
    text = load_report(cases, meta, args.threads)
    (ROOT / "bench" / "results" / "load-latest.md").write_text(text)
    print()
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the wide table (default 1M)")
    parser.add_argument("--tables", type=int, default=50, help="tables of the mixed schema (default 50)")
    parser.add_argument("--rows-each", type=int, default=20_000, help="rows per mixed table (default 20000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--huge", action="store_true", help="also dump a table 10x the buffer pool (memory)")
    parser.add_argument("--no-s3", action="store_true")
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--load", action="store_true", help="the load benchmark instead (bench/load.py)")
    args = parser.parse_args()

    reuse = os.environ.get("TIBACKUP_TEST_REUSE") == "1" and os.environ.get("TIBACKUP_TEST_MYSQL_PORT")
    if reuse:
        server = MariaDBServer.attach(
            os.environ["TIBACKUP_TEST_MYSQL_HOST"], int(os.environ["TIBACKUP_TEST_MYSQL_PORT"])
        )
    else:
        server = MariaDBServer(buffer_pool_size="64M").start()
    s3: S3Server | None = None
    try:
        if not args.no_s3:
            if reuse and os.environ.get("TIBACKUP_TEST_S3_ENDPOINT"):
                s3 = S3Server.attach(
                    os.environ["TIBACKUP_TEST_S3_ENDPOINT"], os.environ["TIBACKUP_TEST_S3_ACCESS_KEY"],
                    os.environ["TIBACKUP_TEST_S3_SECRET_KEY"],
                )  # fmt: skip
            else:
                s3 = make_s3_server().start()
                s3.warm_up()
            with contextlib.suppress(Exception):  # it may exist from an earlier run
                s3.create_bucket(args.bucket)
        conn = server.connect()
        cases: list[Case] = []
        compileall.compile_dir(ROOT / "src" / "tibackup", quiet=1)  # what pip install does
        print(f"  {'dataset':>10} | {'target':10} | {'tool':44} | {'wall':>8} | {'CPU':>8} | peak RSS")
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_wide")
        conn.select_db("bench_wide")
        t0 = time.perf_counter()
        load_wide_table(conn, "bench_wide", "sbtest1", args.rows)
        print(f"  (loaded {args.rows:,} rows in {time.perf_counter() - t0:.1f} s)")
        if args.load:
            run_load_bench(server, conn, s3, args)
            return
        cases += bench_dataset(f"{args.rows // 1000}k rows", "bench_wide", ["sbtest1"], server, s3, args)
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_mixed")
        conn.select_db("bench_mixed")
        tables = load_many_tables(conn, "bench_mixed", tables=args.tables, rows_each=args.rows_each)
        cases += bench_dataset(f"{args.tables} tables", "bench_mixed", tables, server, s3, args)
        if args.huge:
            rows = 7_000_000  # ~650 MB of rows: ten times the 64 MiB buffer pool
            conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_huge")
            conn.select_db("bench_huge")
            load_wide_table(conn, "bench_huge", "sbtest1", rows)
            huge_args = argparse.Namespace(**{**vars(args), "repeat": 1})
            cases += bench_dataset("10x buffer pool", "bench_huge", ["sbtest1"], server, None, huge_args)
        conn.close()
        version = subprocess.run(["mydumper", "--version"], capture_output=True, text=True).stdout.strip()
        meta = (
            f"Benchmark of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; "
            f"MariaDB {server.execute('SELECT VERSION()')[0][0]} (buffer pool 64 MiB) on the same machine; "
            f"{version}; S3: {'SeaweedFS/Ceph local' if s3 else 'skipped'}; median of {args.repeat} runs."
        )
        text = report(cases, meta)
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        (results / "latest.md").write_text(text)
        print()
        print(text)
    finally:
        if s3 is not None and not reuse:
            s3.stop()
        if not reuse:
            server.stop()


if __name__ == "__main__":
    main()
