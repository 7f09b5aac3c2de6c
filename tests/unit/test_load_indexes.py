"""Which keys of a CREATE TABLE wait for the data, and the ALTERs that add them (pure parts)."""

from __future__ import annotations

from tibackup.dump.conn import ServerType
from tibackup.load.indexes import add_index_statements, defer_keys, index_clauses, references
from tibackup.load.plan import data_order
from tibackup.load.source import BackupFile, FileKind


def _create(*lines: str, engine: str = "InnoDB") -> bytes:
    body = ",\n".join(f"  {line}" for line in lines)
    return f"\nCREATE TABLE `t` (\n{body}\n) ENGINE={engine} DEFAULT CHARSET=utf8mb4;".encode()


def test_plain_keys_wait_the_others_stay() -> None:
    sql = _create(
        "`id` int(11) NOT NULL", "`a` varchar(20) DEFAULT NULL", "`b` int(11) DEFAULT NULL", "`c` text",
        "PRIMARY KEY (`id`)", "UNIQUE KEY `ua` (`a`)", "KEY `kb` (`b`) COMMENT 'x, y'",
        "KEY `ka` (`a`(5),`b` DESC) IGNORED", "FULLTEXT KEY `ft` (`c`)",
    )  # fmt: skip
    deferred = defer_keys(sql)
    assert deferred is not None
    assert deferred.keys == (b"KEY `kb` (`b`) COMMENT 'x, y'", b"KEY `ka` (`a`(5),`b` DESC) IGNORED")
    assert deferred.create == _create(
        "`id` int(11) NOT NULL", "`a` varchar(20) DEFAULT NULL", "`b` int(11) DEFAULT NULL", "`c` text",
        "PRIMARY KEY (`id`)", "UNIQUE KEY `ua` (`a`)", "FULLTEXT KEY `ft` (`c`)",
    )  # fmt: skip


def test_the_last_line_waiting_leaves_no_trailing_comma() -> None:
    deferred = defer_keys(_create("`id` int", "`k` int", "PRIMARY KEY (`id`)", "KEY `k_1` (`k`)"))
    assert deferred is not None and deferred.create == _create("`id` int", "`k` int", "PRIMARY KEY (`id`)")


def test_only_keys_after_the_last_key_that_stays_wait() -> None:
    # The server sorts a SPATIAL key (and any plain key that stays) among the plain keys in the order
    # they were added: a key added later would come after it, so only those after it may wait.
    sql = _create(
        "`id` int NOT NULL AUTO_INCREMENT", "`e` int NOT NULL", "`g` point NOT NULL", "`b` int",
        "PRIMARY KEY (`e`,`id`)", "KEY `kb` (`b`)", "SPATIAL KEY `sp` (`g`)", "KEY `kid` (`id`)",
        "KEY `kb2` (`b`,`e`)",
    )  # fmt: skip
    deferred = defer_keys(sql)
    assert deferred is not None and deferred.keys == (b"KEY `kb2` (`b`,`e`)",), "kid holds the AUTO_INCREMENT"
    expression = _create("`a` int", "KEY `ka` (`a`)", "KEY `f` ((`a` + 1))")
    assert defer_keys(expression) is None, "an expression key stays, and the plain key before it"


def test_tables_that_keep_every_key() -> None:
    with_fk = _create(
        "`id` int", "`p` int", "KEY `kp` (`p`)", "CONSTRAINT `f` FOREIGN KEY (`p`) REFERENCES `parent` (`id`)"
    )
    assert defer_keys(with_fk) is None
    assert defer_keys(_create("`id` int", "KEY `k` (`id`)"), referenced=True) is None
    assert defer_keys(_create("`id` int", "KEY `k` (`id`)", engine="MyISAM")) is None
    assert defer_keys(b"CREATE TABLE t (a int, KEY k (a)) ENGINE=InnoDB;") is None, "not SHOW CREATE's shape"
    assert defer_keys(b"CREATE TABLE `v`(\n`id` int\n)ENGINE=MyISAM;") is None, "a view's stand-in"
    assert defer_keys(_create("`id` int", "PRIMARY KEY (`id`)")) is None


def test_tidb_definition() -> None:
    sql = _create(
        "`id` bigint NOT NULL AUTO_RANDOM(5)", "`k` int DEFAULT NULL",
        "PRIMARY KEY (`id`) /*T![clustered_index] CLUSTERED */", "KEY `k_1` (`k`) /*!80000 INVISIBLE */",
    )  # fmt: skip
    deferred = defer_keys(sql)
    assert deferred is not None and deferred.keys == (b"KEY `k_1` (`k`) /*!80000 INVISIBLE */",)


def test_references_and_index_clauses() -> None:
    sql = (
        b"CONSTRAINT `a` FOREIGN KEY (`x`) REFERENCES `p` (`id`), "
        b"CONSTRAINT `b` FOREIGN KEY (`y`) REFERENCES `o``db`.`q` (`id`)"
    )
    assert references(sql, "db") == {("db", "p"), ("o`db", "q")}
    sql = _create("`id` int", "PRIMARY KEY (`id`)", "UNIQUE KEY `u` (`id`)", "KEY `we``ird` (`id`)")
    assert index_clauses(sql) == [("u", b"UNIQUE KEY `u` (`id`)"), ("we`ird", b"KEY `we``ird` (`id`)")]


def test_one_alter_per_table_except_tidb_before_6_2() -> None:
    clauses = [b"KEY `a` (`a`)", b"KEY `b` (`b`)"]
    one = [b"ALTER TABLE `d`.`t` ADD KEY `a` (`a`), ADD KEY `b` (`b`)"]
    assert add_index_statements(ServerType.MARIADB, "10.11.6", "`d`.`t`", clauses) == one
    assert add_index_statements(ServerType.MYSQL, "8.0.36", "`d`.`t`", clauses) == one
    assert add_index_statements(ServerType.TIDB, "7.5.1", "`d`.`t`", clauses) == one
    assert add_index_statements(ServerType.TIDB, "6.2.0", "`d`.`t`", clauses) == one
    assert add_index_statements(ServerType.TIDB, "6.1.7", "`d`.`t`", clauses) == [
        b"ALTER TABLE `d`.`t` ADD KEY `a` (`a`)",
        b"ALTER TABLE `d`.`t` ADD KEY `b` (`b`)",
    ]


def test_data_loads_biggest_table_first_with_its_files_together() -> None:
    """Each table's files come together, the biggest table first: its data is in early, so its long
    index build overlaps the smaller tables' data (files sorted by size alone spread a table's files —
    and so its build — to the end)."""

    def data(table: str, *sizes: int) -> list[BackupFile]:
        return [BackupFile(f"d.{table}.{i:09d}.sql", n, FileKind.DATA, "d", table) for i, n in enumerate(sizes)]

    big, mid, tiny = data("zbig", 100, 101, 30), data("mid", 102, 5), data("atiny", 20)
    order = [f.name for f in data_order([*tiny, *mid, *big])]
    assert order == [
        "d.zbig.000000001.sql", "d.zbig.000000000.sql", "d.zbig.000000002.sql",
        "d.mid.000000000.sql", "d.mid.000000001.sql", "d.atiny.000000000.sql",
    ]  # fmt: skip
