"""Sample schemas for tests, the demo and the benchmarks, filled server-side with MariaDB's SEQUENCE engine.

`INSERT … SELECT … FROM seq_1_to_N` generates rows inside the server, so a million rows take seconds and
no data crosses the wire. Values are deterministic functions of the row number (tests can recompute them).
"""

from __future__ import annotations

from typing import Any

# One sysbench-like row is ~92 bytes of dump text: id, k, a 45-char c and a 22-char pad.
WIDE_ROW_BYTES = 92


def _exec(conn: Any, *statements: str) -> None:
    cur = conn.cursor()
    try:
        for stmt in statements:
            cur.execute(stmt)
    finally:
        cur.close()


def _use(conn: Any, database: str) -> None:
    _exec(conn, f"CREATE DATABASE IF NOT EXISTS `{database}`", f"USE `{database}`")


def _fill(conn: Any, insert_prefix: str, select: str, rows: int, batch: int = 1_000_000) -> None:
    """INSERT in batches of at most `batch` rows (keeps one transaction and the binlog event bounded)."""
    start = 1
    while start <= rows:
        end = min(rows, start + batch - 1)
        _exec(conn, f"{insert_prefix} {select.format(lo=start - 1)} FROM seq_{start}_to_{end}")
        start = end + 1


def load_wide_table(conn: Any, database: str, table: str = "sbtest1", rows: int = 100_000) -> None:
    """A sysbench-like table: id INT PK, k INT (indexed), c CHAR(60) holding 45 characters, pad CHAR(22).

    About 92 bytes per row when dumped, so 1M rows ≈ 92 MB of SQL text. Row n has k = n*7919 % rows + 1,
    c = SHA1(n) + '-' + 4-digit n % 10000, pad = 11-digit 3n + '-' + 10-digit n % 97."""
    _use(conn, database)
    _exec(
        conn,
        f"DROP TABLE IF EXISTS `{table}`",
        f"""CREATE TABLE `{table}` (
            id INT NOT NULL AUTO_INCREMENT,
            k INT NOT NULL DEFAULT 0,
            c CHAR(60) NOT NULL DEFAULT '',
            pad CHAR(22) NOT NULL DEFAULT '',
            PRIMARY KEY (id),
            KEY k_1 (k)
        ) ENGINE=InnoDB""",
    )
    m = max(rows, 1)
    _fill(
        conn,
        f"INSERT INTO `{table}` (id, k, c, pad)",
        "SELECT seq, (seq * 7919) % " + str(m) + " + 1, "
        "CONCAT(SHA1(seq), '-', LPAD(seq % 10000, 4, '0')), "
        "CONCAT(LPAD(seq * 3, 11, '0'), '-', LPAD(seq % 97, 10, '0'))",
        rows,
    )
    # Fresh statistics: information_schema row counts and sizes are what chunk planners look at.
    _exec(conn, f"ANALYZE TABLE `{table}`")


def load_sample(conn: Any, database: str, rows: int = 1000) -> dict[str, int]:
    """A small shop-like database with mixed column types, a composite key, a table without primary key,
    an empty table and a view. Returns {table: row count}."""
    _use(conn, database)
    _exec(
        conn,
        "DROP VIEW IF EXISTS order_totals",
        "DROP TABLE IF EXISTS order_items, orders, customers, events, empty_table",
        """CREATE TABLE customers (
            id BIGINT NOT NULL PRIMARY KEY,
            name VARCHAR(100) NOT NULL,
            email VARCHAR(200) NULL,
            balance DECIMAL(12, 2) NOT NULL DEFAULT 0,
            active TINYINT(1) NOT NULL DEFAULT 1,
            created_at DATETIME(3) NOT NULL,
            birthday DATE NULL,
            note TEXT NULL,
            avatar BLOB NULL,
            score DOUBLE NULL,
            tier ENUM('free', 'pro', 'enterprise') NOT NULL DEFAULT 'free',
            flags BIT(8) NOT NULL DEFAULT b'0'
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        """CREATE TABLE orders (
            id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            customer_id BIGINT NOT NULL,
            status VARCHAR(20) NOT NULL,
            placed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            meta JSON NULL,
            KEY idx_customer (customer_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        """CREATE TABLE order_items (
            order_id INT NOT NULL,
            line_no SMALLINT NOT NULL,
            sku CHAR(12) NOT NULL,
            qty INT NOT NULL,
            price DECIMAL(10, 2) NOT NULL,
            PRIMARY KEY (order_id, line_no)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        """CREATE TABLE events (
            happened_at DATETIME NOT NULL,
            kind VARCHAR(32) NOT NULL,
            payload VARBINARY(255) NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        "CREATE TABLE empty_table (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
    )
    n = max(rows, 1)
    _fill(
        conn,
        "INSERT INTO customers (id, name, email, balance, active, created_at, birthday, note, avatar, score, "
        "tier, flags)",
        "SELECT seq, CONCAT('Customer ', seq, IF(seq % 7 = 0, ' \\'quoted\\' \\\\ back', ''), "
        "IF(seq % 11 = 0, ' 名前 ✓', '')), "
        "IF(seq % 5 = 0, NULL, CONCAT('user', seq, '@example.com')), "
        "(seq * 37 % 100000) / 100, seq % 2, "
        "TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq MINUTE + INTERVAL (seq % 1000) * 1000 MICROSECOND, "
        "IF(seq % 3 = 0, NULL, DATE('1970-01-01') + INTERVAL (seq * 13 % 20000) DAY), "
        "IF(seq % 4 = 0, NULL, CONCAT('line one\\nline two\\t', REPEAT('x', seq % 50), '\\r\\n\"end\"')), "
        "IF(seq % 6 = 0, NULL, UNHEX(CONCAT('00', SHA1(seq), '0A0D27225C1A'))), "
        "IF(seq % 9 = 0, NULL, seq / 7.0), "
        "ELT(1 + seq % 3, 'free', 'pro', 'enterprise'), seq % 256",
        n,
    )
    orders = 2 * n
    _fill(
        conn,
        "INSERT INTO orders (id, customer_id, status, placed_at, meta)",
        f"SELECT seq, 1 + seq % {n}, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'), "
        "TIMESTAMP('2024-06-01 12:00:00') + INTERVAL seq SECOND, "
        "IF(seq % 10 = 0, NULL, JSON_OBJECT('channel', ELT(1 + seq % 2, 'web', 'app'), 'n', seq))",
        orders,
    )
    items = 3 * orders
    _fill(
        conn,
        "INSERT INTO order_items (order_id, line_no, sku, qty, price)",
        "SELECT 1 + (seq - 1) DIV 3, 1 + (seq - 1) % 3, CONCAT('SKU-', LPAD(seq % 9973, 8, '0')), "
        "1 + seq % 5, (seq % 10000) / 100",
        items,
    )
    _fill(
        conn,
        "INSERT INTO events (happened_at, kind, payload)",
        "SELECT TIMESTAMP('2024-01-01') + INTERVAL seq HOUR, ELT(1 + seq % 3, 'login', 'logout', 'error'), "
        "IF(seq % 2 = 0, NULL, UNHEX(SHA1(seq)))",
        n,
    )
    _exec(
        conn,
        """CREATE VIEW order_totals AS
            SELECT o.id AS order_id, o.customer_id, SUM(i.qty * i.price) AS total
            FROM orders o JOIN order_items i ON i.order_id = o.id
            GROUP BY o.id, o.customer_id""",
    )
    return {"customers": n, "orders": orders, "order_items": items, "events": n, "empty_table": 0}


def load_many_tables(conn: Any, database: str, tables: int = 50, rows_each: int = 100) -> list[str]:
    """`tables` tables of four rotating shapes (int PK, varchar PK, composite PK, no PK), each with
    rows_each rows. Returns the table names in creation order."""
    _use(conn, database)
    shapes = [
        (
            "id INT PRIMARY KEY, v VARCHAR(40), n DECIMAL(10,3), t DATETIME",
            "seq, CONCAT('v', seq), seq / 8, TIMESTAMP('2024-01-01') + INTERVAL seq MINUTE",
        ),
        (
            "code VARCHAR(20) PRIMARY KEY, body TEXT, f DOUBLE",
            "CONCAT('c', LPAD(seq, 8, '0')), REPEAT(CHAR(97 + seq % 26), 1 + seq % 40), seq * 1.5",
        ),
        ("a INT, b INT, payload VARBINARY(64), PRIMARY KEY (a, b)", "seq DIV 10, seq % 10, UNHEX(SHA1(seq))"),
        (
            "x BIGINT, y VARCHAR(30) NULL, d DATE",
            "seq * 1000003, IF(seq % 3 = 0, NULL, CONCAT('y', seq)), DATE('2020-01-01') + INTERVAL seq DAY",
        ),
    ]
    names: list[str] = []
    for i in range(tables):
        name = f"t{i:04d}"
        columns, select = shapes[i % len(shapes)]
        _exec(conn, f"DROP TABLE IF EXISTS `{name}`", f"CREATE TABLE `{name}` ({columns}) ENGINE=InnoDB")
        if rows_each > 0:
            _exec(conn, f"INSERT INTO `{name}` SELECT {select} FROM seq_1_to_{rows_each}")
        names.append(name)
    return names
