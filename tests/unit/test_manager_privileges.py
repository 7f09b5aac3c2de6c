"""Privileges from SHOW GRANTS lines, as MySQL, MariaDB and TiDB print them."""

from __future__ import annotations

from tibackup.manager.privileges import missing_privileges, parse_grants

MARIADB_FULL = [
    "GRANT SELECT, RELOAD, LOCK TABLES, BINLOG MONITOR ON *.* TO `bk`@`%` IDENTIFIED BY PASSWORD '*ABC'",
    "GRANT SELECT, UPDATE ON `mysql`.`tidb` TO `bk`@`%`",
]


def test_everything_granted_mariadb_spelling() -> None:
    grants = parse_grants(MARIADB_FULL)
    assert missing_privileges(grants, gc_table=True) == []


def test_all_privileges_covers_everything_tidb_spelling() -> None:
    grants = parse_grants(["GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION"])
    assert missing_privileges(grants, gc_table=True) == []


def test_only_select_names_each_missing_privilege() -> None:
    grants = parse_grants(["GRANT SELECT ON *.* TO `bk`@`%` IDENTIFIED BY PASSWORD '*X'"])
    assert missing_privileges(grants, gc_table=False) == ["LOCK TABLES", "RELOAD", "REPLICATION CLIENT"]
    assert missing_privileges(grants, gc_table=True) == [
        "LOCK TABLES",
        "RELOAD",
        "REPLICATION CLIENT",
        "UPDATE ON mysql.tidb",
    ]


def test_usage_only() -> None:
    grants = parse_grants(["GRANT USAGE ON *.* TO `nobody`@`%`"])
    assert missing_privileges(grants, gc_table=False) == [
        "SELECT",
        "LOCK TABLES",
        "RELOAD",
        "REPLICATION CLIENT",
    ]


def test_database_level_select_and_lock_count_but_reload_must_be_global() -> None:
    grants = parse_grants(
        [
            "GRANT REPLICATION CLIENT ON *.* TO `bk`@`%`",
            "GRANT SELECT, LOCK TABLES, RELOAD ON `shop`.* TO `bk`@`%`",
        ]
    )
    assert missing_privileges(grants, gc_table=False) == ["RELOAD"]


def test_column_lists_quotes_and_gc_table_via_schema_grant() -> None:
    grants = parse_grants(
        [
            "GRANT RELOAD, REPLICATION CLIENT ON *.* TO 'bk'@'%'",
            "GRANT SELECT (`a`, `b`), INSERT ON `my.db`.`t` TO 'bk'@'%'",
            "GRANT LOCK TABLES ON `my.db`.* TO 'bk'@'%'",
            "GRANT SELECT, UPDATE ON mysql.* TO 'bk'@'%'",
        ]
    )
    assert grants.on("my.db.t") == {"SELECT", "INSERT"}
    assert missing_privileges(grants, gc_table=True) == []


def test_role_grants_are_noticed() -> None:
    grants = parse_grants(["GRANT USAGE ON *.* TO `bk`@`%`", "GRANT `backup_role` TO `bk`@`%`"])
    assert grants.has_roles
    assert not parse_grants(MARIADB_FULL).has_roles


def test_the_privileges_spec_lists_are_enough_without_insert_and_delete_on_mysql_tidb() -> None:
    """SPEC §3: SELECT and UPDATE on mysql.tidb; INSERT and DELETE only let backups share (gc.py)."""
    grants = parse_grants(MARIADB_FULL)
    assert not grants.has("INSERT", "mysql.tidb")
    assert missing_privileges(grants, gc_table=True) == []
