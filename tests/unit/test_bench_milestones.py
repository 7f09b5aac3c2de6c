"""bench/milestones.py's reading of the general log: which statements read data, and their kinds."""

from __future__ import annotations

from bench.milestones import data_select, kind


def test_a_table_read_whole_counts_as_a_data_select_and_plan_lookups_do_not() -> None:
    # mydumper reads a table under its chunk size whole, without WHERE: the 50 tables' data phase.
    assert data_select("Query", "SELECT /*!40001 SQL_NO_CACHE */ * FROM `db`.`t0001`")
    assert data_select("Query", "SELECT `id`,`v` FROM `db`.`t` WHERE `id` >= 1 AND `id` < 9 ORDER BY `id`")
    for lookup in (
        "SELECT MIN(`id`),MAX(`id`) FROM `db`.`t`",
        "SELECT COUNT(*) FROM `db`.`t`",
        "SELECT @@tidb_config",
        "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'db'",
        "SELECT VERSION()",
    ):
        assert not data_select("Query", lookup), lookup
    assert not data_select("Connect", "root@localhost on db")


def test_statements_are_counted_by_kind() -> None:
    assert kind("Query", "SHOW CREATE TABLE `db`.`t`") == "Query SHOW CREATE"
    assert kind("Query", "EXPLAIN SELECT `id` FROM `db`.`t`") == "Query EXPLAIN SELECT"
    assert kind("Query", "SELECT * FROM `db`.`t`") == "Query SELECT (data)"
    assert kind("Query", "select c from information_schema.columns") == "Query SELECT … information_schema"
    assert kind("Query", "SELECT VERSION()") == "Query SELECT (other)"
    assert kind("Quit", "") == "Quit"
