"""``tibackup dump`` speaks the command line's language: a bad ``-o s3://…`` is a usage error (exit 2),
and S3 credential errors name the environment variables and flags, never a Secret or a Backup field."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.test_dump_errors import assert_one_line_error, db_args, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-o", "s3://"], "no bucket in 's3://'"),
        (["-o", "s3://bucket/x", "--s3.sse", "rot13"], "unsupported --s3.sse 'rot13'"),
        (["-o", "s3://bucket/x", "--s3.endpoint", "ftp://x"], "invalid --s3.endpoint"),
    ],
)
def test_bad_s3_output_is_a_usage_error(args: list[str], needle: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, needle)


def _no_backup_words(line: str) -> None:
    for word in ("Secret", "secretName", "s3.secretName", "access_key", "secret_key"):
        assert word not in line, line


def test_wrong_secret_key_names_the_variable(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, fresh_db: str
) -> None:
    proc = run_cli(
        *db_args(mariadb), "-B", fresh_db, "-o", f"s3://{bucket}/x",
        "--s3.endpoint", s3_server.endpoint, "--s3.provider", "other", "--s3.region", s3_server.region,
        env={"TIBACKUP_DB_PASSWORD": mariadb.password, "AWS_ACCESS_KEY_ID": s3_server.access_key,
             "AWS_SECRET_ACCESS_KEY": s3_server.bad_secret_key},
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    line = assert_one_line_error(proc, "AWS_SECRET_ACCESS_KEY")
    _no_backup_words(line)


def test_no_credentials_names_the_variables(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, fresh_db: str
) -> None:
    proc = run_cli(
        *db_args(mariadb), "-B", fresh_db, "-o", f"s3://{bucket}/x",
        "--s3.endpoint", s3_server.endpoint, "--s3.provider", "other", "--s3.region", s3_server.region,
        env={"TIBACKUP_DB_PASSWORD": mariadb.password, "AWS_EC2_METADATA_DISABLED": "true",
             "AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/creds"},
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    line = assert_one_line_error(proc, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    _no_backup_words(line)


def _warnings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if " WARNING " in line]


def test_filter_that_matches_nothing_completes_with_one_warning(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """A typo in -f gives an empty backup, as in Dumpling, but not silently: one warning names the filter."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    env = {"TIBACKUP_DB_PASSWORD": mariadb.password}
    proc = run_cli(*db_args(mariadb), "-f", f"{fresh_db}.nosuch*", "-o", str(tmp_path / "typo"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "dump complete: " in proc.stdout
    (line,) = _warnings(proc)
    assert f"the table filter ({fresh_db}.nosuch*) matched no table or view" in line, line
    assert "the backup holds no data; check -f/-T/-B" in line
    assert (tmp_path / "typo" / "metadata").exists()  # still a complete (empty) backup

    proc = run_cli(*db_args(mariadb), "-f", f"{fresh_db}.*", "-o", str(tmp_path / "ok"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc) == []


def test_sql_dump_never_warns_about_the_filter(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> None:
    env = {"TIBACKUP_DB_PASSWORD": mariadb.password}
    proc = run_cli(
        *db_args(mariadb), "-f", f"{fresh_db}.nosuch*", "--sql", "SELECT 1 AS one", "-o", str(tmp_path / "q"),
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc) == []
