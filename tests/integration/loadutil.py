"""Load with tibackup's own loader (its command-line parser, its engine), and compare tables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.dumputil import checksums
from tibackup.cli.load_cmd import config_from_args
from tibackup.load.loader import LoadResult, run_load


def db_flags(server: MariaDBServer) -> list[str]:
    return ["-h", server.host, "-P", str(server.port), "-u", server.user]


def s3_flags(s3: S3Server) -> list[str]:
    return ["--s3.endpoint", s3.endpoint, "--s3.region", s3.region, "--s3.provider", "other"]


def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)


def load(server: MariaDBServer, source: str, *flags: str) -> LoadResult:
    config, _ = config_from_args(
        ["-d", source, *db_flags(server), *flags], {"TIBACKUP_DB_PASSWORD": server.password}
    )
    return run_load(config)


def load_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TIBACKUP_DB", "MYSQL_PWD"))
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", "load", *args],
        capture_output=True, text=True, env=environment, timeout=timeout,
    )  # fmt: skip


def table_state(server: MariaDBServer, database: str, tables: list[str]) -> dict[str, object]:
    """CHECKSUM TABLE of each table; tables with VIRTUAL columns (unstable checksums, TESTING.md)
    compared by their rows instead."""
    stable = [t for t in tables if t != "gen"]
    state: dict[str, object] = dict(checksums(server, database, stable))
    if "gen" in tables:
        state["gen"] = server.execute(f"SELECT * FROM `{database}`.gen ORDER BY id")
    return state
