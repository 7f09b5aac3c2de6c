"""Dumpling's file heads per server type (the integration tests see MariaDB's)."""

from __future__ import annotations

from tibackup.dump.conn import ServerType
from tibackup.dump.writer import data_file_header


def test_data_file_head_per_server_type_is_dumplings() -> None:
    mysql_head = b"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n/*!40101 SET NAMES binary*/;\n"
    assert data_file_header(ServerType.MYSQL) == mysql_head
    assert data_file_header(ServerType.TIDB) == mysql_head
    assert (
        data_file_header(ServerType.MARIADB) == b"/*!40101 SET NAMES binary*/;\nSET FOREIGN_KEY_CHECKS=0;\n"
    )


# -- --column-filter -------------------------------------------------------------------------------
import pytest  # noqa: E402

from tibackup.dump.columnfilter import parse_column_filters, project_create_table  # noqa: E402
from tibackup.errors import UsageError  # noqa: E402

CREATE = "\n".join(
    [
        "CREATE TABLE `t` (",
        "  `id` int(11) NOT NULL,",
        "  `a``b` int(11) DEFAULT NULL,",
        "  `p` int(11) DEFAULT NULL,",
        "  PRIMARY KEY (`id`),",
        "  KEY `fk_p` (`p`),",
        "  CONSTRAINT `fk_p` FOREIGN KEY (`p`) REFERENCES `parent` (`id`)",
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        " PARTITION BY HASH (`id`)",
        "PARTITIONS 2",
    ]
)


def test_projection_drops_columns_keys_and_foreign_keys_and_mends_the_commas() -> None:
    projected = project_create_table(CREATE, ["id", "a`b"])
    assert projected.split("\n")[:5] == [
        "CREATE TABLE `t` (",
        "  `id` int(11) NOT NULL,",
        "  `a``b` int(11) DEFAULT NULL,",
        "  PRIMARY KEY (`id`)",
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ]
    assert projected == project_create_table(CREATE, ["ID", "A`B"]), "column names ignore case"


def test_projection_refuses_a_removed_partition_column_or_default_expression() -> None:
    one_line = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `v` int(11)\n) ENGINE=InnoDB PARTITION BY RANGE (`v`) (PARTITION `p0` VALUES LESS THAN (1))"
    with pytest.raises(UsageError, match="partition definition references a removed column"):
        project_create_table(one_line, ["id"])
    with pytest.raises(UsageError, match="partition definition"):
        project_create_table(CREATE, ["p"])  # its own line in MariaDB's text: ` PARTITION BY HASH (`id`)`
    with_default = "CREATE TABLE `t` (\n  `a` int(11),\n  `b` int(11) DEFAULT (`a` + 1)\n) ENGINE=InnoDB"
    with pytest.raises(UsageError, match="column `b` expression references a removed column"):
        project_create_table(with_default, ["b"])


def test_column_rules_last_match_wins_and_unmatched_tables_keep_everything() -> None:
    cf = parse_column_filters(
        ['{ matcher = ["d.*"], columns = ["*", "!s*", "secret_ok"] }'], "", case_sensitive=False
    )
    assert cf is not None
    assert cf.kept("d", "t", ["id", "Secret", "secret_ok", "name"]) == ("id", "secret_ok", "name")
    assert cf.kept("other", "t", ["id", "s"]) is None
    assert parse_column_filters([], "", case_sensitive=False) is None
