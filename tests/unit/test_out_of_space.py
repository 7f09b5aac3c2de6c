"""A database server out of space is named as such, with the fix, whatever error code it uses."""

from __future__ import annotations

import pytest

from tibackup.dump.config import Connection
from tibackup.dump.conn import describe_error
from tibackup.errors import DatabaseError
from tibackup.load.execute import one_line


class ServerError(Exception):
    pass


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1114, "The table 't' is full"),
        (1021, 'Disk full (./db/t.MAI); waiting for someone to free some space... (errno: 28 "No space")'),
        (3, "Error writing file './binlog/mariadb-bin.000002' (Errcode: 28 \"No space left on device\")"),
        (1030, 'Got error 28 "No space left on device" from storage engine InnoDB'),
    ],
)
def test_out_of_space_names_the_cause_and_the_fix(code: int, text: str) -> None:
    error = describe_error(ServerError(code, text), Connection(host="db", port=3306), "loading d.t.0.sql")
    assert error.exit_code == 3
    assert error.message.startswith("the database at db:3306 is out of space while loading d.t.0.sql")
    assert "free space on the database server" in error.message and "resumes" in error.message


def test_another_write_error_is_not_called_out_of_space() -> None:
    error = describe_error(ServerError(3, "Error writing file 'x' (Errcode: 13 \"Permission denied\")"),
                           Connection(host="db", port=3306), "loading d.t.0.sql")  # fmt: skip
    assert "out of space" not in error.message


def test_a_long_message_keeps_its_end_where_the_fix_is() -> None:
    error = DatabaseError("loading " + "x" * 600 + ": free space, then run again")
    text = one_line(error, "d.t.0.sql").message
    assert len(text) < 450 and text.endswith("free space, then run again (in d.t.0.sql)")
