"""Dumpling's file heads per server type (the integration tests see MariaDB's)."""

from __future__ import annotations

from tibackup.dump.conn import ServerType
from tibackup.dump.writer import data_file_header


def test_data_file_head_per_server_type_is_dumplings() -> None:
    mysql_head = b"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n/*!40101 SET NAMES binary*/;\n"
    assert data_file_header(ServerType.MYSQL) == mysql_head
    assert data_file_header(ServerType.TIDB) == mysql_head
    assert data_file_header(ServerType.MARIADB) == b"/*!40101 SET NAMES binary*/;\nSET FOREIGN_KEY_CHECKS=0;\n"
