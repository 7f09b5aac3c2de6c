"""Per-table work of a dump that the default (client) read mode does not need (issue 12, sixth pass)."""

from __future__ import annotations

from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump
from tibackup.dump.render import RowFormat

pytestmark = pytest.mark.integration


def test_a_client_read_builds_no_server_side_row_expression(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row expression (CONCAT/QUOTE/HEX per column) is what the bulk and stream modes send; the
    client read's SELECT names the columns only, so building it per chunk was work for nothing."""
    for i in range(3):
        mariadb.execute(f"CREATE TABLE `{fresh_db}`.t{i} (id INT PRIMARY KEY, v VARCHAR(20), b VARBINARY(8))")
        mariadb.execute(f"INSERT INTO `{fresh_db}`.t{i} VALUES (1, 'a''b', X'00ff'), (2, NULL, NULL)")
    built: list[int] = []
    original = RowFormat.row_expr

    def counted(self: RowFormat, columns: object) -> str:
        built.append(1)
        return original(self, columns)  # type: ignore[arg-type]

    monkeypatch.setattr(RowFormat, "row_expr", counted)
    client = dump(mariadb, tmp_path / "client", "-B", fresh_db, "-t", "2")
    assert not built and client.rows == 6
    stream = dump(mariadb, tmp_path / "stream", "-B", fresh_db, "-t", "2", "--read-mode", "stream")
    assert len(built) == 3 and stream.rows == 6, "the stream mode still renders rows server-side"
    for name in (f"{fresh_db}.t{i}.000000000.sql" for i in range(3)):
        assert (tmp_path / "client" / name).read_bytes() == (tmp_path / "stream" / name).read_bytes()
