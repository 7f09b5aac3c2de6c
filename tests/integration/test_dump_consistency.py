"""One point in time: money moves between two tables while they are dumped; the dump's total never changes."""

from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path

import MySQLdb
import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump

pytestmark = pytest.mark.integration

ACCOUNTS = 20000
START = 1000
ROW = re.compile(rb"\((\d+),(-?\d+)\)")


def _sum_dumped(folder: Path, database: str) -> tuple[int, int]:
    total = rows = 0
    for path in folder.glob(f"{database}.acct_*.0*.sql"):
        for _, amount in ROW.findall(path.read_bytes()):
            total += int(amount)
            rows += 1
    return total, rows


@pytest.mark.parametrize("mode", ["flush", "lock"])
def test_dump_sees_one_point_in_time(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str
) -> None:
    for table in ("acct_a", "acct_b"):
        mariadb.execute(
            f"CREATE TABLE {table} (id INT PRIMARY KEY, amount BIGINT NOT NULL)", database=fresh_db
        )
        mariadb.execute(
            f"INSERT INTO {table} SELECT seq, {START} FROM seq_1_to_{ACCOUNTS}", database=fresh_db
        )
    expected = 2 * ACCOUNTS * START

    stop = threading.Event()
    moved = [0]

    def mover() -> None:
        conn = mariadb.connect(fresh_db)
        cur = conn.cursor()
        rng = random.Random(7)
        deadline = time.monotonic() + 60  # bounded whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            a, b, amount = rng.randint(1, ACCOUNTS), rng.randint(1, ACCOUNTS), rng.randint(1, 50)
            src, dst = ("acct_a", "acct_b") if rng.random() < 0.5 else ("acct_b", "acct_a")
            try:
                cur.execute("BEGIN")
                cur.execute(f"UPDATE {src} SET amount = amount - {amount} WHERE id = {a}")
                cur.execute(f"UPDATE {dst} SET amount = amount + {amount} WHERE id = {b}")
                cur.execute("COMMIT")
                moved[0] += 1
            except MySQLdb.OperationalError:  # a deadlock with the dump's table locks: retry, as an app would
                cur.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=mover, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # transfers are flowing before the dump starts
        # Small chunks and statements on several workers: many separate reads that must agree.
        dump(mariadb, tmp_path, "-B", fresh_db, "--consistency", mode, "-t", "4", "-r", "500", "-s", "2000")
        during = moved[0]
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    total, rows = _sum_dumped(tmp_path, fresh_db)
    assert rows == 2 * ACCOUNTS
    assert total == expected, f"the dump mixed points in time (off by {total - expected})"
    live = mariadb.execute(
        "SELECT (SELECT SUM(amount) FROM acct_a) + (SELECT SUM(amount) FROM acct_b)", database=fresh_db
    )
    assert int(live[0][0]) == expected
    assert during > 0 and moved[0] > during, "transfers ran during and after the dump"
