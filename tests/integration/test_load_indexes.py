"""Secondary indexes after the data: the tables a load creates end with exactly the source's definition
(SHOW CREATE TABLE, index order included) and rows, their plain keys added by one ALTER per table;
tables that existed before the load are never altered; --no-defer-indexes loads as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import checksums, dump
from tests.integration.loadutil import load
from tibackup.cli.load_cmd import config_from_args
from tibackup.dump.config import Connection
from tibackup.dump.conn import DB, ServerType
from tibackup.load.loader import run_load

pytestmark = pytest.mark.integration

TABLES = ["idx", "plain", "parent", "child", "my"]
DEFERRED_TABLES = 2  # idx and plain; parent/child have a FOREIGN KEY between them, my is MyISAM


def create_indexed(server: MariaDBServer, db: str) -> None:
    """Tables with every kind of index, in an order that makes the server's key sorting matter."""
    server.execute(
        f"CREATE TABLE `{db}`.idx (id INT NOT NULL AUTO_INCREMENT, a VARCHAR(100), b INT, c TEXT, "
        "g POINT NOT NULL, d INT, e INT NOT NULL, "
        "PRIMARY KEY (e, id), UNIQUE KEY ud (d), KEY kid (id), KEY kb (b) COMMENT 'bee''s key', "
        "SPATIAL KEY sp (g), KEY ka (a(10), b DESC), KEY kd (d) IGNORED, KEY kz (b, d) USING BTREE, "
        "FULLTEXT KEY ft (c)) ENGINE=InnoDB COMMENT='every kind'"
    )
    server.execute(
        "INSERT INTO idx (a, b, c, g, d, e) SELECT CONCAT('a', seq * 7 % 101), seq % 13, "
        "CONCAT('word', seq % 17, ' other', seq), POINT(seq, seq % 50), seq, seq % 3 FROM seq_1_to_3000",
        database=db,
    )
    server.execute(
        f"CREATE TABLE `{db}`.plain (id INT PRIMARY KEY, k INT NOT NULL, s VARCHAR(20), "
        "KEY k_1 (k), KEY ks (s(4), k)) ENGINE=InnoDB"
    )
    server.execute(
        "INSERT INTO plain SELECT seq, seq * 7919 % 20000, CONCAT('s', seq * 31 % 997) FROM seq_1_to_20000",
        database=db,
    )
    server.execute(f"CREATE TABLE `{db}`.parent (id INT PRIMARY KEY, x INT, KEY kx (x)) ENGINE=InnoDB")
    server.execute("INSERT INTO parent SELECT seq, seq FROM seq_1_to_500", database=db)
    server.execute(
        f"CREATE TABLE `{db}`.child (id INT PRIMARY KEY, p INT, y INT, KEY ky (y), "
        "CONSTRAINT fk_p FOREIGN KEY (p) REFERENCES parent (x)) ENGINE=InnoDB"
    )
    server.execute("INSERT INTO child SELECT seq, seq % 500 + 1, seq % 7 FROM seq_1_to_2000", database=db)
    server.execute(f"CREATE TABLE `{db}`.my (id INT PRIMARY KEY, v INT, KEY kv (v)) ENGINE=MyISAM")
    server.execute("INSERT INTO my SELECT seq, seq % 11 FROM seq_1_to_1000", database=db)


def definitions(server: MariaDBServer, db: str, tables: list[str]) -> dict[str, str]:
    return {t: server.execute(f"SHOW CREATE TABLE `{db}`.`{t}`")[0][1] for t in tables}


def alters(server: MariaDBServer) -> int:
    return int(server.execute("SHOW GLOBAL STATUS LIKE 'Com_alter_table'")[0][1])


@pytest.fixture()
def indexed(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> tuple[str, dict[str, str], object]:
    """The tables dumped (several files and statements per table) and dropped; their definitions
    and checksums as they were."""
    create_indexed(mariadb, fresh_db)
    dump(mariadb, tmp_path, "-B", fresh_db, "-r", "5000", "-s", "50000")
    before = definitions(mariadb, fresh_db, TABLES), checksums(mariadb, fresh_db, TABLES)
    mariadb.drop_database(fresh_db)
    return fresh_db, *before


@pytest.mark.parametrize("flags", [[], ["--checkpoint=false"]])
def test_deferred_keys_end_exactly_as_the_source(
    mariadb: MariaDBServer, indexed: tuple[str, dict[str, str], object], tmp_path: Path, flags: list[str]
) -> None:
    db, shown, sums = indexed
    count = alters(mariadb)
    result = load(mariadb, str(tmp_path), "-t", "2", *flags)
    assert alters(mariadb) - count == DEFERRED_TABLES, "one ALTER per table whose keys waited, no other"
    assert definitions(mariadb, db, TABLES) == shown, "SHOW CREATE TABLE as the source's, key order too"
    assert checksums(mariadb, db, TABLES) == sums
    assert result.rows == 3000 + 20000 + 500 + 2000 + 1000
    if flags:
        return
    finished = mariadb.execute(
        "SELECT file, pos FROM tibackup_load.checkpoints WHERE load_id = %s", (result.load_id,)
    )
    assert finished == [(b"load:finished", -3)], "the marks of the waiting keys went with the checkpoint"


def test_no_defer_indexes_loads_as_before(
    mariadb: MariaDBServer, indexed: tuple[str, dict[str, str], object], tmp_path: Path
) -> None:
    db, shown, sums = indexed
    count = alters(mariadb)
    load(mariadb, str(tmp_path), "-t", "2", "--no-defer-indexes")
    assert alters(mariadb) == count, "every table created whole, none altered"
    assert definitions(mariadb, db, TABLES) == shown
    assert checksums(mariadb, db, TABLES) == sums


def test_existing_tables_are_never_altered(
    mariadb: MariaDBServer, indexed: tuple[str, dict[str, str], object], tmp_path: Path
) -> None:
    # The user made `plain` beforehand, without k_1 and with a key of their own, and put a row in it.
    db, shown, _ = indexed
    mariadb.create_database(db)
    mariadb.execute(
        f"CREATE TABLE `{db}`.plain (id INT PRIMARY KEY, k INT NOT NULL, s VARCHAR(20), KEY mine (s)) "
        "ENGINE=InnoDB"
    )
    mariadb.execute(f"INSERT INTO `{db}`.plain VALUES (1, 5, 'theirs')")
    theirs = definitions(mariadb, db, ["plain"])
    count = alters(mariadb)
    load(mariadb, str(tmp_path), "-t", "2", "--on-duplicate", "ignore")
    assert definitions(mariadb, db, ["plain"]) == theirs, "the existing table keeps its own indexes"
    assert alters(mariadb) - count == DEFERRED_TABLES - 1, "only idx, which the load created"
    assert definitions(mariadb, db, ["idx"]) == {"idx": shown["idx"]}
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{db}`.plain")[0][0] == 20000


def test_a_key_an_earlier_run_added_meanwhile_is_not_added_twice(
    mariadb: MariaDBServer, fresh_db: str
) -> None:
    # The ALTER of a killed run may finish while the rerun adds the same keys: "Duplicate key name"
    # makes it read the table's indexes again and add only what is still missing.
    from tibackup.load.indexes import _add  # here: the other tests run on a build without the module

    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, a INT, b INT, KEY ka (a))")
    session = DB(_connection(mariadb))
    try:
        _add(session, ServerType.MARIADB, "10.11", (fresh_db, "t"), [b"KEY `ka` (`a`)", b"KEY `kb` (`b`)"])
    finally:
        session.close()
    keys = mariadb.execute(
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = 't'",
        (fresh_db,),
    )
    assert {k for (k,) in keys} == {"PRIMARY", "ka", "kb"}


def _connection(server: MariaDBServer) -> Connection:
    return Connection(host=server.host, port=server.port, user=server.user, password=server.password)


def test_without_alter_privilege_the_keys_stay_in_the_table(
    mariadb: MariaDBServer, indexed: tuple[str, dict[str, str], object], tmp_path: Path
) -> None:
    # An account that may create and fill tables but not ALTER them loads as before: no new privilege.
    db, shown, sums = indexed
    user = f"noalter_{db[-8:]}"
    mariadb.create_user(
        user, "noalter-pw", [f"CREATE, INSERT, SELECT ON `{db}`.*", "CREATE, INSERT, DELETE, SELECT ON tibackup_load.*"]
    )
    try:
        count = alters(mariadb)
        config, _ = config_from_args(
            ["-d", str(tmp_path), "-h", mariadb.host, "-P", str(mariadb.port), "-u", user, "-t", "2"],
            {"TIBACKUP_DB_PASSWORD": "noalter-pw"},
        )
        run_load(config)
        assert alters(mariadb) == count
        assert definitions(mariadb, db, TABLES) == shown
        assert checksums(mariadb, db, TABLES) == sums
    finally:
        mariadb.execute(f"DROP USER IF EXISTS '{user}'@'%'")
