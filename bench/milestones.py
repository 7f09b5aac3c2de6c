"""Where two dump commands' wall time goes, seen from the server: its general log (TABLE, microseconds).

    python bench/milestones.py --rounds 9 --port PORT --clean /tmp/out \\
        "mydumper -h 127.0.0.1 -P PORT -u root -p PASS -t 2 -r 100000 -B bench_wide -o /tmp/out" \\
        "python -m tibackup.cli.main dump -h 127.0.0.1 -P PORT -u root -t 2 -r 100000 -B bench_wide -o /tmp/out"

Runs the commands in turns (interleaved rounds, the output folder emptied before each) with the general
log on, and prints per command the median (fastest–slowest) time from its process start, taken here, to
its first statement, its first and last data SELECT (a SELECT of the dumped rows with a WHERE: the
chunks; a table read whole), the last session's Quit and the process gone. The same instrument for both tools, with no
tracing in either (strace would slow the one that opens more files: Python's imports). The password is
taken from MYSQL_PWD; the general log is switched off again at the end. ``--kinds`` also counts each
command's statements of the last round by kind (their first words: ``Query SELECT``, ``Query SHOW
CREATE``, ``Connect``, ``Quit``…), to compare the round trips per table.
"""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import shutil
import statistics
import subprocess
import time

import MySQLdb


def data_select(command: str, argument: str) -> bool:
    text = argument.upper()
    if command != "Query" or not text.startswith("SELECT") or "INFORMATION_SCHEMA" in text:
        return False
    if " WHERE " in text:  # a chunk's range
        return True
    # A table read whole (mydumper: small tables, no WHERE), not a lookup of the plan or the server
    return " FROM " in text and not any(w in text for w in ("MIN(", "MAX(", "COUNT(", "@@", "MYSQL."))


def kind(command: str, argument: str) -> str:
    """A statement's kind: the command and the argument's first two words (a SELECT of data or of
    information_schema told apart)."""
    words = argument.upper().replace("(", " ").replace("`", " ").split()[:2]
    if command != "Query":
        return command
    if words and words[0] == "SELECT":
        if "INFORMATION_SCHEMA" in argument.upper():
            return "Query SELECT … information_schema"
        return "Query SELECT (data)" if data_select(command, argument) else "Query SELECT (other)"
    return "Query " + " ".join(words)


def kinds(cursor: MySQLdb.cursors.Cursor) -> collections.Counter[str]:
    cursor.execute(
        "SELECT command_type, LEFT(argument, 300) FROM mysql.general_log WHERE thread_id <> CONNECTION_ID()"
    )
    return collections.Counter(
        kind(k, a.decode() if isinstance(a, bytes) else a) for k, a in cursor.fetchall()
    )


def milestones(cursor: MySQLdb.cursors.Cursor, started: float, ended: float) -> dict[str, float]:
    cursor.execute(
        "SELECT UNIX_TIMESTAMP(event_time), command_type, LEFT(argument, 300) FROM mysql.general_log "
        "WHERE thread_id <> CONNECTION_ID() ORDER BY event_time"
    )
    rows = [(float(t), kind, a.decode() if isinstance(a, bytes) else a) for t, kind, a in cursor.fetchall()]
    data = [t for t, kind, a in rows if data_select(kind, a)]
    ms = lambda t: (t - started) * 1000  # noqa: E731
    return {
        "first statement": ms(rows[0][0]),
        "first data SELECT": ms(data[0]),
        "last data SELECT": ms(data[-1]),
        "last Quit": ms(max(t for t, kind, _ in rows if kind == "Quit")),
        "process gone": ms(ended),
        "statements": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="root")
    parser.add_argument("--clean", default="", help="the output folder, emptied before each run")
    parser.add_argument("--kinds", action="store_true", help="also the statements of the last round by kind")
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args()
    db = MySQLdb.connect(
        host="127.0.0.1",
        port=args.port,
        user=args.user,
        password=os.environ.get("MYSQL_PWD", ""),
        autocommit=True,
    )
    cursor = db.cursor()
    cursor.execute("SET GLOBAL log_output = 'TABLE'")
    cursor.execute("SET GLOBAL general_log = 1")
    results: dict[str, list[dict[str, float]]] = {c: [] for c in args.commands}
    counted: dict[str, collections.Counter[str]] = {}
    try:
        for _ in range(args.rounds):
            for command in args.commands:
                if args.clean:
                    shutil.rmtree(args.clean, ignore_errors=True)
                cursor.execute("TRUNCATE mysql.general_log")
                started = time.time()  # the server's event_time is wall-clock time too
                subprocess.run(shlex.split(command), check=True, stdout=subprocess.DEVNULL)
                results[command].append(milestones(cursor, started, time.time()))
                if args.kinds:
                    counted[command] = kinds(cursor)
    finally:
        cursor.execute("SET GLOBAL general_log = 0")
        cursor.execute("SET GLOBAL log_output = 'FILE'")
    for command, runs in results.items():
        print(command[:100])
        for name in runs[0]:
            values = [r[name] for r in runs]
            print(f"  {name:20} {statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})")
        for name, count in sorted(counted.get(command, {}).items(), key=lambda kv: -kv[1]):
            print(f"    {count:5}  {name}")


if __name__ == "__main__":
    main()
