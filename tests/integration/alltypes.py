"""A database holding every MariaDB column type with its awkward values, for round-trip tests."""

from __future__ import annotations

from testenv.mariadb import MariaDBServer

ALL_BYTES = "0x" + bytes(range(256)).hex()
NASTY = "CONCAT('a''b\"c\\\\d', CHAR(10), 'e', CHAR(13), 'f', CHAR(0), 'g', CHAR(26), 'h', CHAR(9), 'é😀')"

SCHEMA = [
    """CREATE TABLE ints (
        id INT PRIMARY KEY,
        ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
        i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, b BOOL)""",
    "INSERT INTO ints VALUES (1,-128,255,-32768,65535,-8388608,16777215,-2147483648,4294967295,"
    "-9223372036854775808,18446744073709551615,1)",
    "INSERT INTO ints VALUES (2,127,0,32767,0,8388607,0,2147483647,0,9223372036854775807,0,0)",
    "INSERT INTO ints VALUES (3,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL)",
    """CREATE TABLE nums (
        id INT PRIMARY KEY, d65 DECIMAL(65,30), d10 DECIMAL(10,2) UNSIGNED, f FLOAT, db DOUBLE, n NUMERIC(5,0))""",
    "INSERT INTO nums VALUES (1, 12345678901234567890123456789012345.123456789012345678901234567891,"
    " 99999999.99, 3.14159, 2.2250738585072014e-308, -99999)",
    "INSERT INTO nums VALUES (2, -0.000000000000000000000000000001, 0, -1.5e38, 1.7976931348623157e308, 0)",
    "INSERT INTO nums VALUES (3, NULL, NULL, NULL, NULL, NULL)",
    "CREATE TABLE bits (id INT PRIMARY KEY, b1 BIT(1), b8 BIT(8), b12 BIT(12), b64 BIT(64))",
    "INSERT INTO bits VALUES (1, b'1', b'00000101', b'100000000001', 0xFFFFFFFFFFFFFFFF)",
    "INSERT INTO bits VALUES (2, b'0', b'0', b'0', 0)",
    "INSERT INTO bits VALUES (3, NULL, NULL, NULL, NULL)",
    """CREATE TABLE times (
        id INT PRIMARY KEY, d DATE, dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
        t TIME, t6 TIME(6), y YEAR)""",
    "INSERT INTO times VALUES (1,'0000-00-00','0000-00-00 00:00:00','1000-01-01 00:00:00.000000',"
    "'1970-01-01 00:00:01','2038-01-19 03:14:07.999999','-838:59:59','838:59:59.000000',0)",
    "INSERT INTO times VALUES (2,'9999-12-31','9999-12-31 23:59:59','2024-02-29 12:34:56.789012',"
    "'2000-01-01 00:00:00',NULL,'00:00:00','-00:00:01.500000',2155)",
    "INSERT INTO times VALUES (3,NULL,NULL,NULL,NULL,NULL,NULL,NULL,1901)",
    """CREATE TABLE strs (
        id INT PRIMARY KEY, c CHAR(20), vc VARCHAR(200), tx TEXT, lt LONGTEXT, l1 VARCHAR(50) CHARACTER SET latin1,
        e ENUM('a','b''q','c d'), s SET('x','y','z'), j JSON) DEFAULT CHARSET=utf8mb4""",
    f"INSERT INTO strs VALUES (1, 'plain', {NASTY}, {NASTY}, REPEAT('long text ', 5000), 'caf\xe9', 'b''q', 'x,z',"
    ' \'{"k": [1, "two", null], "q": "a\\\\"b"}\')',
    "INSERT INTO strs VALUES (2, '', '', '', '', '', 'a', '', '[]')",
    "INSERT INTO strs VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "INSERT INTO strs VALUES (4, '\\\\', '\\\\\\\\', 'NULL', '\\'', '\"', 'c d', 'y', 'null')",
    """CREATE TABLE bins (
        id INT PRIMARY KEY, bn BINARY(4), vb VARBINARY(300), bl BLOB, lb LONGBLOB, tb TINYBLOB)""",
    f"INSERT INTO bins VALUES (1, 0x00FF0A27, {ALL_BYTES}, {ALL_BYTES}, REPEAT({ALL_BYTES}, 300), 0x5C27220D0A1A00)",
    "INSERT INTO bins VALUES (2, '', '', '', '', '')",
    "INSERT INTO bins VALUES (3, NULL, NULL, NULL, NULL, NULL)",
    """CREATE TABLE gen (
        id INT PRIMARY KEY, a INT, b VARCHAR(10),
        v INT AS (a * 2) VIRTUAL, s VARCHAR(20) AS (CONCAT(b, '!')) PERSISTENT)""",
    "INSERT INTO gen (id, a, b) VALUES (1, 21, 'x'), (2, NULL, NULL), (3, -1, 'it''s')",
    "CREATE TABLE empty_t (id INT PRIMARY KEY, v VARCHAR(10))",
    "CREATE TABLE nokey (a INT, b VARCHAR(20))",
    "INSERT INTO nokey VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, 'two')",
    "CREATE TABLE composite (a INT NOT NULL, b VARCHAR(20) NOT NULL, v INT, PRIMARY KEY (a, b))",
    "INSERT INTO composite SELECT seq % 7, CONCAT('k', seq), seq FROM seq_1_to_3000",
    "CREATE TABLE strkey (k VARCHAR(40) PRIMARY KEY, v INT) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
    "INSERT INTO strkey SELECT CONCAT(CHAR(65 + seq % 26), '-', seq, IF(seq % 5 = 0, '''q', '')), seq FROM seq_1_to_3000",
    "CREATE TABLE big (id BIGINT PRIMARY KEY, payload VARCHAR(100), n INT)",
    "INSERT INTO big SELECT seq * 3, CONCAT('row ', seq, ' ', REPEAT('x', seq % 50)), seq % 97 FROM seq_1_to_20000",
    "CREATE VIEW v_big AS SELECT id, n FROM big WHERE n < 10",
]

TABLES = [
    "ints",
    "nums",
    "bits",
    "times",
    "strs",
    "bins",
    "gen",
    "empty_t",
    "nokey",
    "composite",
    "strkey",
    "big",
]


def create_all_types(server: MariaDBServer, database: str) -> None:
    conn = server.connect(database)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION sql_mode = ''")
        for statement in SCHEMA:
            cur.execute(statement)
    finally:
        conn.close()
