"""The server's own work for each command, counted in instructions: mariadbd under callgrind (issue 12).

    flock /tmp/tibackup-heavy.lock python3 bench/servergrind.py --rounds 2 \\
        "mydumper -h 127.0.0.1 -P {port} -u root -p {password} -t 2 -r 100000 -B bench_1m -o {out}" \\
        "python3 -m tibackup.cli.main dump -h 127.0.0.1 -P {port} -u root -t 2 -r 100000 -B bench_1m -o {out}"

Wall times and CPU seconds of a server on a shared 2-core machine spread by more than the differences
that matter here (bench/servercpu.py); instruction counts do not: callgrind counts what mariadbd's
threads execute in user space, the same for the same statements whatever else the machine does. So
this starts a MariaDB of its own (``--basedir``, 128 MiB pool, the 1M-row ``sbtest1`` in ``bench_1m``
loaded once by a normal start) under ``valgrind --tool=callgrind``, warms the buffer pool with the
first command, then runs each command in turn, round after round, with the counters zeroed before
and dumped after it, and prints the server's instructions per command. Not counted: the kernel's work
(system time: the socket, page reads), waiting, and the commands' own work. ``{port}``, ``{password}``
and ``{out}`` (emptied before each run) are filled in; the password is in MYSQL_PWD and
TIBACKUP_DB_PASSWORD too.

The server needs ``--innodb-use-native-aio=0`` (valgrind hangs on io_uring/libaio) and a
``--innodb-buffer-pool-size-max`` of the pool's size (10.11.19 reserves 8 TiB of address space by
default, which valgrind cannot map). It runs ~50× slower: a 1M-row dump takes ~30 s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import fill_wide  # noqa: E402
from testenv.mariadb import MariaDBServer  # noqa: E402

DB = "bench_1m"


def summary(path: Path) -> int:
    """The instruction total of one callgrind dump file."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary line in {path}")


def counted(pid: int, label: str, cmd: list[str], env: dict[str, str], out: Path, dumps: Path) -> int:
    """Run ``cmd`` with the server's counters zeroed before and dumped after; its instructions."""
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    before = set(dumps.glob("callgrind.out*"))
    subprocess.run(["callgrind_control", "-d", label, str(pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if proc.returncode:
        raise SystemExit(f"failed: {shlex.join(cmd)}\n{proc.stderr.decode(errors='replace')[-2000:]}")
    new = sorted(set(dumps.glob("callgrind.out*")) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise SystemExit("callgrind wrote no dump")
    return summary(new[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commands", nargs="+", help="commands, with {port}, {password}, {out}")
    parser.add_argument("--basedir", default="/tmp/tibackup-servergrind")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("valgrind is not installed: apt-get install valgrind")

    plain = MariaDBServer(args.basedir, buffer_pool_size="128M").start()
    conn = plain.connect()
    fill_wide(conn, DB, args.rows)
    conn.close()
    port = plain.port
    plain.stop(remove=False)

    dumps = Path(tempfile.mkdtemp(prefix="tibackup-servergrind-"))
    grind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dumps}/callgrind.out", "--dump-instr=no"]
    server = MariaDBServer(
        args.basedir, port=port, buffer_pool_size="128M", launcher=grind,
        extra_args=["--innodb-use-native-aio=0", "--innodb-buffer-pool-size-max=128M"],
    ).start(timeout=600)  # fmt: skip
    try:
        pid = int(server.pid_file.read_text().strip())
        env = {**os.environ, "MYSQL_PWD": server.password, "TIBACKUP_DB_PASSWORD": server.password}
        out = dumps / "out"
        fill = {"port": str(server.port), "password": server.password, "out": str(out)}
        commands = {c: shlex.split(c.format(**fill)) for c in args.commands}
        counted(pid, "warm", commands[args.commands[0]], env, out, dumps)
        counts: dict[str, list[int]] = {c: [] for c in commands}
        for i in range(args.rounds):
            for c, cmd in commands.items():
                counts[c].append(counted(pid, f"r{i}", cmd, env, out, dumps))
                print(f"  round {i + 1}: {counts[c][-1] / 1e9:.3f} G  {c}", flush=True)
    finally:
        server.stop(remove=False)
        shutil.rmtree(dumps, ignore_errors=True)
    first = statistics.median(counts[args.commands[0]])
    print(f"\nmariadbd's instructions (user space), median of {args.rounds} rounds:\n")
    print("| command | instructions | × the first |\n|---|---:|---:|")
    for c, values in counts.items():
        med = statistics.median(values)
        print(f"| `{c}` | {med / 1e9:.3f} G ({min(values) / 1e9:.3f}–{max(values) / 1e9:.3f}) | {med / first:.3f} |")


if __name__ == "__main__":
    main()
