"""Dumpling compatibility as a Dumpling user meets it: file heads, -T with views, -L, -V, sequences."""

from __future__ import annotations

from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import _mariadb, dump

pytestmark = pytest.mark.integration

SCHEMA_HEAD = b"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n/*!40101 SET NAMES binary*/;\n"
MARIADB_DATA_HEAD = b"/*!40101 SET NAMES binary*/;\nSET FOREIGN_KEY_CHECKS=0;\n"


def _family(server: MariaDBServer, db: str) -> None:
    """A child table whose name sorts before its parent's, as in the issue."""
    server.execute(f"CREATE TABLE `{db}`.b_parent (id INT PRIMARY KEY) ENGINE=InnoDB")
    server.execute(
        f"CREATE TABLE `{db}`.a_child (id INT PRIMARY KEY, p INT, "
        f"FOREIGN KEY (p) REFERENCES `{db}`.b_parent (id)) ENGINE=InnoDB"
    )
    server.execute(f"INSERT INTO `{db}`.b_parent VALUES (1), (2)")
    server.execute(f"INSERT INTO `{db}`.a_child VALUES (10, 1), (20, 2)")


def test_files_start_as_dumplings_and_a_child_loads_before_its_parent(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    _family(mariadb, fresh_db)
    mariadb.execute(f"CREATE VIEW `{fresh_db}`.v AS SELECT id FROM `{fresh_db}`.b_parent")
    dump(mariadb, tmp_path, "-B", fresh_db, "--no-views=false")
    for name in ("-schema-create.sql", ".a_child-schema.sql", ".v-schema.sql", ".v-schema-view.sql"):
        assert (tmp_path / f"{fresh_db}{name}").read_bytes().startswith(SCHEMA_HEAD), name
    child_data = (tmp_path / f"{fresh_db}.a_child.000000000.sql").read_bytes()
    assert child_data == MARIADB_DATA_HEAD + b"INSERT INTO `a_child` VALUES\n(10,1),\n(20,2);\n"
    # Load in file-name order, child first: each file turns the checks off for itself.
    mariadb.drop_database(fresh_db)
    _mariadb(mariadb, None, (tmp_path / f"{fresh_db}-schema-create.sql").read_bytes())
    for name in (
        "a_child-schema.sql",
        "a_child.000000000.sql",
        "b_parent-schema.sql",
        "b_parent.000000000.sql",
    ):
        _mariadb(mariadb, fresh_db, (tmp_path / f"{fresh_db}.{name}").read_bytes())
    assert (
        mariadb.execute(
            f"SELECT COUNT(*) FROM `{fresh_db}`.a_child JOIN `{fresh_db}`.b_parent ON p = b_parent.id"
        )[0][0]
        == 2
    )


def test_csv_files_have_no_sql_head(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> None:
    _family(mariadb, fresh_db)
    dump(mariadb, tmp_path, "-B", fresh_db, "--filetype", "csv")
    assert (tmp_path / f"{fresh_db}.a_child.000000000.csv").read_bytes() == b'"id","p"\r\n10,1\r\n20,2\r\n'
