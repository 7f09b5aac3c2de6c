"""The read timeout: Dumpling's default (15m) on the command line and in a Backup, its syntax, and the
one-line error that names it when it fires (the server's silence, not a dropped connection)."""

from __future__ import annotations

import time

import pytest

from tibackup.dump.config import Connection
from tibackup.dump.conn import describe_error, format_seconds
from tibackup.dump.options import parse_dumpling_args
from tibackup.errors import UsageError
from tibackup.manager.gc import restore_connection
from tibackup.manager.settings import dump_config
from tibackup.resources import Backup


def test_default_is_dumplings_15m() -> None:
    assert parse_dumpling_args(["-o", "out"]).connection.read_timeout == 900


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h30m", 5400), ("2.5s", 2.5), ("0", None)]
)
def test_dumpling_duration_syntax(text: str, seconds: float | None) -> None:
    assert parse_dumpling_args(["--read-timeout", text, "-o", "out"]).connection.read_timeout == seconds


def test_bad_duration_names_the_flag() -> None:
    with pytest.raises(UsageError, match="--read-timeout"):
        parse_dumpling_args(["--read-timeout=soon", "-o", "out"])


def _backup(options: list[str]) -> Backup:
    return Backup.model_validate(
        {
            "apiVersion": "pingcap.com/v1alpha1",
            "kind": "Backup",
            "metadata": {"name": "b", "namespace": "ns"},
            "spec": {
                "from": {"host": "127.0.0.1", "port": 3306, "secretName": "pw"},
                "s3": {"provider": "ceph", "bucket": "bk"},
                "dumpling": {"options": options},
            },
        }
    )


def test_a_backup_has_the_default_and_can_set_it() -> None:
    assert dump_config(_backup([]).spec, "x", "").connection.read_timeout == 900
    assert dump_config(_backup(["--read-timeout=30s"]).spec, "x", "").connection.read_timeout == 30


def test_the_gc_restore_never_waits_the_dumps_timeout() -> None:
    assert restore_connection(Connection(read_timeout=900)).read_timeout == 60
    assert restore_connection(Connection(read_timeout=5)).read_timeout == 5
    assert restore_connection(Connection(read_timeout=None)).read_timeout == 60


class LostConnection(Exception):
    pass


def test_silence_past_the_timeout_is_named_read_timeout() -> None:
    conn = Connection(host="db", port=3306, read_timeout=3)
    exc = LostConnection(2013, "Lost connection to server during query")
    error = describe_error(exc, conn, "reading rows", started=time.monotonic() - 3.01)
    assert error.reason == "ReadTimeout" and error.exit_code == 3
    assert "db:3306 sent nothing for 3s (the read timeout) while reading rows" in error.message
    assert "--read-timeout" in error.message
    # The same error code right away is a dropped connection, not the timeout.
    quick = describe_error(exc, conn, "reading rows", started=time.monotonic())
    assert quick.reason == "ConnectionFailed" and "lost the connection" in quick.message


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (900, 90, 3, 2.5, 3600, 5400)] == [
        "15m",
        "1m30s",
        "3s",
        "2.5s",
        "1h",
        "1h30m",
    ]
