"""Side-by-side dump benchmark: tibackup vs mydumper vs mysqldump vs the C client's plain SELECT (the floor).

Every tool dumps the same data from the same server in the same run; each case is run ``--repeat``
times (``--repeat-short``, 15, when its first round took under a second), the tools taking turns (round after round, so a slow moment of a shared machine hits them alike),
and the median wall time is reported with the ratio to mydumper and to the floor, the tool's own CPU
time (user + system) and its peak resident memory (GNU time), the server's CPU during the run (mariadbd's
/proc/PID/stat) and the core-seconds the machine left idle (/proc/stat; bench/procstat.py). tibackup runs from compiled bytecode, as
an installed package does (PYTHONDONTWRITEBYTECODE is dropped from its environment).

    python bench/run.py                    # 1M rows, 50 tables (local and S3), the 7M-row table: ~5 min
    python bench/run.py --no-large --no-s3 --repeat 3   # quick look
    python bench/run.py --load --huge      # the load benchmark (bench/load.py)

On the 1M-row and 50-table datasets it also measures the other read modes, mysqldump, -t 4 against
mydumper -t 4, and -c gzip / -c zstd against mydumper's -c (0.10 compresses with gzip only); on S3,
tibackup's direct output against mydumper followed by an upload (bench/upload.py). The large table
(7M rows, ~660 MB, five times the buffer pool) compares the floor, mydumper and tibackup at -t 2.
`bench/trace.py` shows where one dump's wall time goes (TIBACKUP_DUMP_TRACE), `bench/milestones.py`
two tools' side by side from the server's general log. The report ends with a start-up table
(the interpreter with and without ``site``, tibackup to its first connection attempt, mydumper).

Servers: its own MariaDB (128 MiB buffer pool, --buffer-pool) and SeaweedFS, or the ones of
`python -m testenv up` when TIBACKUP_TEST_REUSE=1 and the TIBACKUP_TEST_* variables are set (tables
a former run left there are kept). Results: bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import shutil
import site
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

from bench.procstat import idle_seconds, server_cpu, server_pid  # noqa: E402
from bench.startuptimes import startup_report, startup_times  # noqa: E402
from testenv.mariadb import MariaDBServer  # noqa: E402
from testenv.s3 import S3Server, clean_aws_env, make_s3_server  # noqa: E402
from testenv.sampledata import load_many_tables, load_wide_table  # noqa: E402


@dataclass
class Run:
    wall: float
    peak_rss_mb: float
    cpu: float  # user + system seconds of the tool
    server_cpu: float = 0.0  # mariadbd's user + system seconds during the run (/proc/PID/stat)
    idle: float = 0.0  # idle core-seconds of the machine during the run (/proc/stat)


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
    def server_cpu(self) -> float:
        return statistics.median(r.server_cpu for r in self.runs)

    @property
    def idle(self) -> float:
        return statistics.median(r.idle for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)


def timed(cmd: list[str], env: dict[str, str], stdout_path: Path | None = None, pid: int | None = None) -> Run:
    """Wall time, and the peak RSS of the tool itself via GNU time (a forked child's own rusage would
    count this benchmark's pages, shared until exec); with the server's ``pid``, its CPU during the run,
    and the machine's idle core-seconds (bench/procstat.py)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name, *cmd]
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            server0, idle0 = server_cpu(pid), idle_seconds()
            start = time.perf_counter()
            proc = subprocess.run(wrapped, stdout=out, stderr=subprocess.PIPE, env=env)
            wall = time.perf_counter() - start
            server1, idle1 = server_cpu(pid), idle_seconds()
        finally:
            if stdout_path:
                out.close()  # type: ignore[union-attr]
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            raise SystemExit(
                f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}"
            )
        peak_kb, user, system = rss.read().strip().splitlines()[-1].split()
    return Run(wall, int(peak_kb) / 1024, float(user) + float(system), server1 - server0, idle1 - idle0)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tool_commands(db: str, tables: list[str], server: MariaDBServer, args: argparse.Namespace, full: bool) -> dict[
    str, list[str]]:  # fmt: skip
    """The commands to compare on one dataset; ``{out}`` is the output folder (a command without it writes
    to stdout, kept in a file). ``full``: also the other read modes, -t 4 and compression."""
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    threads, rows = str(args.threads), str(args.chunk_rows)
    select_all = "; ".join(f"SELECT * FROM `{db}`.`{t}`" for t in tables)
    mydumper = ["mydumper", *conn, "-p", server.password, "-r", rows, "-B", db, "-o", "{out}"]
    tibackup = [sys.executable, "-m", "tibackup.cli.main", "dump", *conn, "-r", rows, "-B", db, "-o", "{out}",
                "--loglevel", "warn"]  # fmt: skip
    path = os.pathsep.join([str(ROOT / "src"), *site.getsitepackages()])
    no_site = ["env", f"PYTHONPATH={path}", sys.executable, "-S", *tibackup[1:]]
    tools = {
        "floor (mariadb client SELECT *)": ["mariadb", *conn, "--quick", "-N", "-e", select_all],
        f"mydumper -t {threads} -r {rows}": [*mydumper, "-t", threads],
        f"tibackup -t {threads} -r {rows}": [*tibackup, "-t", threads],
    }
    if not full:
        return tools
    more = str(args.more_threads)
    return {
        **tools,
        "mysqldump": ["mysqldump", *conn, "--single-transaction", "--skip-lock-tables", db],
        # This machine's site-packages runs a sandbox .pth at every interpreter start (~32 ms, certifi and
        # importlib.resources) that users' machines do not have; the product never bypasses .pth files.
        # This row shows what that costs: the same dump with `python -S`, the packages on PYTHONPATH.
        f"tibackup -t {threads} -r {rows} (python -S: no .pth)": [*no_site, "-t", threads],
        f"tibackup -t {threads} -r {rows} --read-mode stream": [*tibackup, "-t", threads, "--read-mode", "stream"],
        f"tibackup -t {threads} -r {rows} --read-mode bulk": [*tibackup, "-t", threads, "--read-mode", "bulk"],
        f"mydumper -t {more} -r {rows}": [*mydumper, "-t", more],
        f"tibackup -t {more} -r {rows}": [*tibackup, "-t", more],
        # mydumper 0.10 has no zstd: its -c is gzip, so tibackup is measured with both.
        f"mydumper -t {threads} -r {rows} -c (gzip)": [*mydumper, "-t", threads, "-c"],
        f"tibackup -t {threads} -r {rows} -c gzip": [*tibackup, "-t", threads, "-c", "gzip"],
        f"tibackup -t {threads} -r {rows} -c zstd": [*tibackup, "-t", threads, "-c", "zstd"],
    }  # fmt: skip


def peer_of(tool: str) -> str:
    """The mydumper command a tibackup command is compared with: same -t, gzip for any -c."""
    threads = tool.split(" -t ")[1].split()[0] if " -t " in tool else ""
    rows = tool.split(" -r ")[1].split()[0] if " -r " in tool else ""
    return f"mydumper -t {threads} -r {rows}" + (" -c (gzip)" if " -c " in tool else "")


def bench_dataset(
    name: str,
    db: str,
    tables: list[str],
    server: MariaDBServer,
    s3: S3Server | None,
    args: argparse.Namespace,
    full: bool = True,
) -> list[Case]:
    clean_aws_env()  # no stray AWS_* settings from the machine; S3 cases get exactly their own
    env = {**os.environ, "MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    conn = ["-h", server.host, "-P", str(server.port), "-u", server.user]
    threads, rows = str(args.threads), str(args.chunk_rows)
    work = Path(tempfile.mkdtemp(prefix="tibackup-bench-"))
    tools = tool_commands(db, tables, server, args, full)
    pid = server_pid(server)
    local = {tool: Case(name, "local disk", tool, []) for tool in tools}
    for i in range(max(args.repeat, args.repeat_short)):
        for tool, template in tools.items():
            case = local[tool]
            if i >= rounds_for(case, args):
                continue
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [part.replace("{out}", str(out)) for part in template]
            to_file = out.with_suffix(".sql") if "{out}" not in " ".join(template) else None
            case.runs.append(timed(cmd, env, to_file, pid))
            case.bytes_out = folder_size(out) if out.exists() else (to_file.stat().st_size if to_file else 0)
            if to_file:
                to_file.unlink()
    cases = list(local.values())
    for case in cases:
        show(case)
    if s3 is not None:
        s3env = {**env, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
        s3flags = ["--s3.endpoint", s3.endpoint, "--s3.region", s3.region, "--s3.provider", "other"]
        s3tools = {
            f"tibackup -t {threads} -r {rows} (direct)": lambda prefix: [
                sys.executable, "-m", "tibackup.cli.main", "dump", *conn, "-t", threads, "-r", rows, "-B", db,
                "-o", f"s3://{args.bucket}/{prefix}", *s3flags, "--loglevel", "warn"],
            f"mydumper -t {threads} -r {rows} + upload": lambda prefix: [
                "sh", "-c", " && ".join([
                    f"rm -rf {work}/up && mydumper -h {server.host} -P {server.port} -u {server.user} -p \"$MYSQL_PWD\" "
                    f"-t {threads} -r {rows} -B {db} -o {work}/up",
                    f"{sys.executable} {ROOT}/bench/upload.py {work}/up s3://{args.bucket}/{prefix} {s3.endpoint} "
                    f"{s3.region}"])],
        }  # fmt: skip
        remote = {tool: Case(name, "S3", tool, []) for tool in s3tools}
        slug = "".join(ch if ch.isalnum() else "-" for ch in name)
        for i in range(args.repeat):  # interleaved too
            for j, (tool, cmd_for) in enumerate(s3tools.items()):
                remote[tool].runs.append(timed(cmd_for(f"{slug}-{j}-{i}"), s3env, pid=pid))
        for case in remote.values():
            show(case)
            cases.append(case)
    shutil.rmtree(work, ignore_errors=True)
    return cases


def rounds_for(case: Case, args: argparse.Namespace) -> int:
    """Rounds of a case: ``--repeat-short`` when its first round took under a second (cheap, and the
    start-up's share makes its spread wide), else ``--repeat``."""
    short = bool(case.runs) and case.runs[0].wall < 1.0
    return args.repeat_short if short else args.repeat


def show(case: Case) -> None:
    print(
        f"  {case.dataset:>10} | {case.target:10} | {case.tool:44} | {case.wall:6.2f} s ({spread(case)}) | "
        f"{case.cpu:6.2f} s | {case.server_cpu:6.2f} s | {case.idle:5.2f} s | {case.rss:6.1f} MB",
        flush=True,
    )


def spread(case: Case) -> str:
    walls = [r.wall for r in case.runs]
    return f"{min(walls):.2f}–{max(walls):.2f}"


def report(cases: list[Case], meta: str) -> str:
    lines = [meta, "", "| data | target | tool | wall (median) | spread (min–max) | × mydumper | × floor | tool CPU | "
             "server CPU | idle | peak RSS | output |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for case in cases:
        peers = [c for c in cases if c.dataset == case.dataset]
        same = [c for c in peers if c.target == case.target and c.tool.startswith("mydumper")]
        if case.tool.startswith("mydumper"):
            mydumper: Case | None = case
        elif case.tool.startswith("tibackup"):  # the same -t (and gzip for any -c); on S3, + upload
            peer = peer_of(case.tool)
            mydumper = next((c for c in same if c.tool == peer or c.tool.startswith(peer + " +")), None)
        else:
            mydumper = same[0] if same else None
        floor = next((c for c in peers if c.tool.startswith("floor")), None)
        ratio_m = f"{case.wall / mydumper.wall:.2f}" if mydumper else "–"
        ratio_f = f"{case.wall / floor.wall:.2f}" if floor and case.target == floor.target else "–"
        size = f"{case.bytes_out / 1e6:.1f} MB" if case.bytes_out else "–"
        lines.append(
            f"| {case.dataset} | {case.target} | {case.tool} | {case.wall:.2f} s | {spread(case)} s | {ratio_m} | "
            f"{ratio_f} | {case.cpu:.2f} s | {case.server_cpu:.2f} s | {case.idle:.2f} s | {case.rss:.0f} MB | {size} |"
        )
    return "\n".join(lines) + "\n"


def run_load_bench(server: MariaDBServer, conn: Any, s3: S3Server | None, args: argparse.Namespace) -> None:
    """``--load``: bench/load.py on the wide table (and the huge one with --huge); load-latest.md."""
    from bench.load import bench_load, load_report, many_tables

    clean_aws_env()
    env = {**os.environ, "MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cases = [] if args.no_wide else bench_load(f"{args.rows // 1000}k rows", "bench_wide", server, s3, args, env)
    if args.many:
        cases += many_tables(server, conn, args, env)
    if args.huge:
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_huge")
        conn.select_db("bench_huge")
        load_wide_table(conn, "bench_huge", "sbtest1", 7_000_000)  # ~650 MB of rows
        cases += bench_load("7M rows (memory)", "bench_huge", server, None, args, env, peers=False)
    version = subprocess.run(["myloader", "--version"], capture_output=True, text=True).stdout.strip()
    meta = (
        f"Load benchmark of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; "
        f"MariaDB {server.execute('SELECT VERSION()')[0][0]} (buffer pool "
        f"{int(server.execute('SELECT @@innodb_buffer_pool_size')[0][0]) >> 20} MiB) on the same machine; {version}; "
        f"S3: {'SeaweedFS local' if s3 else 'skipped'}; median of {args.repeat} interleaved rounds (one run of "
        "each tool per round; the huge table: one run)."
    )
    text = load_report(cases, meta, args.threads)
    (ROOT / "bench" / "results" / "load-latest.md").write_text(text)
    print()
    print(text)


def fill_wide(conn: Any, db: str, rows: int) -> None:
    """The sysbench-like table of ``rows`` rows in ``db``, loaded unless a former run left it there."""
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    conn.select_db(db)
    cursor = conn.cursor()
    cursor.execute(
        f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}' AND table_name = 'sbtest1'"
    )
    if cursor.fetchone()[0]:
        cursor.execute("SELECT MIN(id), MAX(id) FROM sbtest1")
        if cursor.fetchone() == (1, rows):
            return
    t0 = time.perf_counter()
    load_wide_table(conn, db, "sbtest1", rows)
    print(f"  (loaded {rows:,} rows into {db} in {time.perf_counter() - t0:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the wide table (default 1M)")
    parser.add_argument("--tables", type=int, default=50, help="tables of the mixed schema (default 50)")
    parser.add_argument("--rows-each", type=int, default=20_000, help="rows per mixed table (default 20000)")
    parser.add_argument(
        "--large-rows", type=int, default=7_000_000, help="rows of the large table (default 7M)"
    )
    parser.add_argument("--no-large", action="store_true", help="skip the large table")
    parser.add_argument("--buffer-pool", default="128M", help="the bench server's InnoDB buffer pool (128M)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--more-threads", type=int, default=4, help="the second -t measured (default 4)")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--repeat-short", type=int, default=15, help="rounds of a sub-second case (default 15)"
    )
    parser.add_argument("--large-repeat", type=int, default=5, help="rounds on the large table (default 5)")
    parser.add_argument("--huge", action="store_true", help="--load: also load the 7M-row table")
    parser.add_argument("--only", default="", help="--load: only the tools whose name matches this regex")
    parser.add_argument("--huge-ab", action="store_true", help="--huge: the 7M rows with --no-defer-indexes too")
    parser.add_argument("--many", action="store_true", help="--load: also the many-table backups (bench/load.py)")
    parser.add_argument("--no-wide", action="store_true", help="--load: skip the 1M-row table")
    parser.add_argument("--ab-src", default="", help="--load: also tibackup from this src folder (an A/B)")
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
        server = MariaDBServer(buffer_pool_size=args.buffer_pool).start()
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
        print(f"  {'dataset':>10} | {'target':10} | {'tool':44} | {'wall':>8} | {'CPU':>8} | {'server':>8} | {'idle':>7} | peak RSS")
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_wide")
        conn.select_db("bench_wide")
        fill_wide(conn, "bench_wide", args.rows)
        if args.load:
            run_load_bench(server, conn, s3, args)
            return
        cases += bench_dataset(f"{args.rows // 1000}k rows", "bench_wide", ["sbtest1"], server, s3, args)
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench_mixed")
        conn.select_db("bench_mixed")
        tables = load_many_tables(conn, "bench_mixed", tables=args.tables, rows_each=args.rows_each)
        cases += bench_dataset(f"{args.tables} tables", "bench_mixed", tables, server, s3, args)
        if not args.no_large:  # ~650 MB of rows, five times the 128 MiB buffer pool
            fill_wide(conn, "bench_huge", args.large_rows)
            large_args = argparse.Namespace(**{**vars(args), "repeat": args.large_repeat, "repeat_short": args.large_repeat})
            label = f"{args.large_rows / 1e6:g}M rows"
            cases += bench_dataset(label, "bench_huge", ["sbtest1"], server, None, large_args, full=False)
        conn.close()
        version = subprocess.run(["mydumper", "--version"], capture_output=True, text=True).stdout.strip()
        pool = int(server.execute("SELECT @@innodb_buffer_pool_size")[0][0]) >> 20
        meta = (
            f"Benchmark of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; "
            f"MariaDB {server.execute('SELECT VERSION()')[0][0]} (buffer pool {pool} MiB) on the same machine; "
            f"{version}; S3: {'SeaweedFS/Ceph local' if s3 else 'skipped'}; median of {args.repeat} interleaved "
            f"rounds, {args.repeat_short} for a case whose first round took under 1 s ({args.large_repeat} on the large "
            "table), spread = fastest–slowest round."
        )
        text = report(cases, meta) + startup_report(startup_times(server, "bench_wide", args.repeat_short))
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
