"""Bad input ends in one line that names the cause and the fix, a non-zero exit, no metadata, nothing half-written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.mounts import small_tmpfs

pytestmark = pytest.mark.integration


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TIBACKUP_DB", "MYSQL_PWD"))
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", "dump", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]
    return errors[0]


def db_args(server: MariaDBServer) -> list[str]:
    return ["-h", server.host, "-P", str(server.port), "-u", server.user]


@pytest.fixture()
def small_db(mariadb: MariaDBServer, fresh_db: str) -> str:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(100))")
    mariadb.execute("INSERT INTO t SELECT seq, REPEAT('x', 100) FROM seq_1_to_3000", database=fresh_db)
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.secret_t (id INT PRIMARY KEY)")
    return fresh_db


def test_unknown_flag(tmp_path: Path) -> None:
    proc = run_cli("--bogus-flag", "1", "-o", str(tmp_path / "out"))
    assert_one_line_error(proc, "--bogus-flag", "tibackup dump --help")
    assert proc.returncode == 2
    assert not (tmp_path / "out").exists()


def test_bad_flag_values(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("-F", "12 parsecs", "-o", str(tmp_path)), "--filesize")
    assert_one_line_error(run_cli("--consistency", "maybe", "-o", str(tmp_path)), "--consistency")
    assert_one_line_error(run_cli("-f", "db.[a", "-o", str(tmp_path)), "db.[a")


def test_wrong_password(mariadb: MariaDBServer, small_db: str, tmp_path: Path) -> None:
    proc = run_cli(
        *db_args(mariadb), "-B", small_db, "-o", str(tmp_path), env={"TIBACKUP_DB_PASSWORD": "not-it"}
    )
    line = assert_one_line_error(proc, "access denied", "password")
    assert "not-it" not in proc.stderr + proc.stdout and "not-it" not in line
    assert not (tmp_path / "metadata").exists()


def test_unreachable_host(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("-h", "127.0.0.1", "-P", str(port), "-o", str(tmp_path), timeout=60)
    assert_one_line_error(proc, "cannot connect", f"127.0.0.1:{port}", "check the host and port")


def test_missing_privilege_is_named(mariadb: MariaDBServer, small_db: str, tmp_path: Path) -> None:
    user, password = "limited_" + uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex[:8]
    mariadb.create_user(
        user, password, [f"SELECT ON `{small_db}`.t", f"INSERT ON `{small_db}`.secret_t", "RELOAD"]
    )
    proc = run_cli(
        "-h", mariadb.host, "-P", str(mariadb.port), "-u", user, "-B", small_db, "-o", str(tmp_path),
        env={"TIBACKUP_DB_PASSWORD": password},
    )  # fmt: skip
    line = assert_one_line_error(proc, "privilege", "grant")
    assert "secret_t" in line or "SELECT" in line
    assert password not in proc.stderr
    assert not (tmp_path / "metadata").exists()


def test_flush_refused_falls_back_to_lock(mariadb: MariaDBServer, small_db: str, tmp_path: Path) -> None:
    user, password = "noreload_" + uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex[:8]
    mariadb.create_user(user, password, [f"SELECT, LOCK TABLES, SHOW VIEW ON `{small_db}`.*"])
    proc = run_cli(
        "-h", mariadb.host, "-P", str(mariadb.port), "-u", user, "-B", small_db, "-o", str(tmp_path),
        env={"TIBACKUP_DB_PASSWORD": password},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "falling back to --consistency lock" in proc.stdout  # the log goes to stdout, as Dumpling's
    assert (tmp_path / "metadata").exists()
    assert (tmp_path / f"{small_db}.t.000000000.sql").read_bytes().count(b"\n(") == 3000


def test_snapshot_without_snapshot_consistency_is_ignored_with_a_warning(
    mariadb: MariaDBServer, small_db: str, tmp_path: Path
) -> None:
    """--snapshot only applies to --consistency snapshot (TiDB), as in Dumpling; elsewhere it is said."""
    proc = run_cli(
        *db_args(mariadb), "-B", small_db, "-o", str(tmp_path), "--snapshot", "434512343210311681",
        env={"TIBACKUP_DB_PASSWORD": mariadb.password},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--snapshot 434512343210311681 is ignored" in proc.stdout
    assert "--consistency flush on MariaDB" in proc.stdout
    assert (tmp_path / "metadata").exists()


def test_missing_bucket(mariadb: MariaDBServer, s3_server: S3Server, small_db: str) -> None:
    proc = run_cli(
        *db_args(mariadb), "-B", small_db, "-o", "s3://no-such-bucket-" + uuid.uuid4().hex[:8] + "/x",
        "--s3.endpoint", s3_server.endpoint, "--s3.provider", "other", "--s3.region", s3_server.region,
        env={"TIBACKUP_DB_PASSWORD": mariadb.password, "AWS_ACCESS_KEY_ID": s3_server.access_key,
             "AWS_SECRET_ACCESS_KEY": s3_server.secret_key},
    )  # fmt: skip
    assert_one_line_error(proc, "no-such-bucket", "does not exist")


def test_no_storage_check_means_no_probe(mariadb: MariaDBServer, small_db: str, tmp_path: Path) -> None:
    """check_storage=False (the manager's --s3-no-check-bucket): the dump never writes its probe."""
    from tibackup.dump.dumper import run_dump
    from tibackup.dump.options import parse_dumpling_args
    from tibackup.record import evolve
    from tibackup.storage.local import LocalStorage

    class NoProbe(LocalStorage):
        def check_writable(self) -> None:
            raise AssertionError("the output was probed")

    args = [*db_args(mariadb), "-B", small_db, "-o", str(tmp_path)]
    config = evolve(
        parse_dumpling_args(args, {"TIBACKUP_DB_PASSWORD": mariadb.password}), check_storage=False
    )
    result = run_dump(config, NoProbe(tmp_path))
    assert result.rows == 3000 and (tmp_path / "metadata").exists()
    with pytest.raises(AssertionError, match="probed"):
        run_dump(evolve(config, check_storage=True), NoProbe(tmp_path / "again"))


def test_wrong_s3_secret(mariadb: MariaDBServer, s3_server: S3Server, small_db: str, bucket: str) -> None:
    proc = run_cli(
        *db_args(mariadb), "-B", small_db, "-o", f"s3://{bucket}/x",
        "--s3.endpoint", s3_server.endpoint, "--s3.provider", "other", "--s3.region", s3_server.region,
        env={"TIBACKUP_DB_PASSWORD": mariadb.password, "AWS_ACCESS_KEY_ID": s3_server.access_key,
             "AWS_SECRET_ACCESS_KEY": s3_server.bad_secret_key},
    )  # fmt: skip
    line = assert_one_line_error(proc, "credentials")
    assert s3_server.bad_secret_key not in proc.stderr and s3_server.bad_secret_key not in line
    assert s3_server.list_keys(bucket) == []
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "tiny", "96k") as mount:
        yield mount


def test_disk_full(mariadb: MariaDBServer, small_db: str, tiny_disk: Path) -> None:
    proc = run_cli(
        *db_args(mariadb),
        "-B",
        small_db,
        "-o",
        str(tiny_disk / "out"),
        env={"TIBACKUP_DB_PASSWORD": mariadb.password},
    )
    assert_one_line_error(proc, "no space left")
    out = tiny_disk / "out"
    assert not (out / "metadata").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "no half-written temporary files are left"


def test_killed_dump_leaves_no_metadata(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(200))")
    mariadb.execute("INSERT INTO t SELECT seq, REPEAT('y', 200) FROM seq_1_to_300000", database=fresh_db)
    environment = {**os.environ, "TIBACKUP_DB_PASSWORD": mariadb.password}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tibackup.cli.main", "dump", *db_args(mariadb), "-B", fresh_db, "-r", "1000",
         "-t", "1", "-o", str(tmp_path)],
        stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip
    # Wait for the first data file, then stop it the way a node drain or `kill` would.
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob("*.t.0*.sql")):
        time.sleep(0.02)
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the dump finished before it could be stopped")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr.lower()
    assert not (tmp_path / "metadata").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
