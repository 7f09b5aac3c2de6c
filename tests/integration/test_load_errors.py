"""`tibackup load` on bad input: one line naming the cause and the fix, dump's exit codes, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.dumputil import dump
from tests.integration.loadutil import db_flags, load_cli, s3_flags
from tibackup.cli.load_cmd import config_from_args
from tibackup.load.loader import run_load
from tibackup.load.privileges import InsufficientPrivileges

pytestmark = pytest.mark.integration


def _one_error(proc: object, code: int, *needles: str) -> str:
    stderr: str = proc.stderr  # type: ignore[attr-defined]
    assert proc.returncode == code, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]
    return errors[0]


@pytest.fixture()
def backup(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> Path:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1), (2)")
    folder = tmp_path / "backup"
    dump(mariadb, folder, "-B", fresh_db)
    mariadb.drop_database(fresh_db)
    return folder


def _pw(server: MariaDBServer) -> dict[str, str]:
    return {"TIBACKUP_DB_PASSWORD": server.password}


def test_wrong_path(mariadb: MariaDBServer, tmp_path: Path) -> None:
    proc = load_cli("-d", str(tmp_path / "nope"), *db_flags(mariadb), env=_pw(mariadb))
    _one_error(proc, 4, "no backup at", "check -d")


def test_missing_metadata(mariadb: MariaDBServer, backup: Path) -> None:
    (backup / "metadata").unlink()
    proc = load_cli("-d", str(backup), *db_flags(mariadb), env=_pw(mariadb))
    _one_error(proc, 4, "no 'metadata' file", "--allow-incomplete")


def test_wrong_password_never_shown(mariadb: MariaDBServer, backup: Path) -> None:
    proc = load_cli("-d", str(backup), *db_flags(mariadb), env={"TIBACKUP_DB_PASSWORD": "wrong-secret-pw"})
    line = _one_error(proc, 3, "access denied", "password")
    assert "wrong-secret-pw" not in proc.stderr and line


def test_unreachable_s3(mariadb: MariaDBServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    proc = load_cli(
        "-d", "s3://bucket/backup/", *db_flags(mariadb), "--s3.endpoint", f"http://127.0.0.1:{port}",
        "--s3.provider", "other", env={**_pw(mariadb), "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )  # fmt: skip
    _one_error(proc, 4, f"127.0.0.1:{port}")


def test_s3_flags_without_s3_source(tmp_path: Path) -> None:
    proc = load_cli("-d", str(tmp_path), "--s3.endpoint", "http://127.0.0.1:1")
    _one_error(proc, 2, "--s3.* flags need an s3:// source")


def test_progress_and_summary(mariadb: MariaDBServer, backup: Path) -> None:
    proc = load_cli("-d", str(backup), *db_flags(mariadb), "--progress", env=_pw(mariadb))
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stderr.splitlines() if "load complete" in line]
    assert len(summary) == 1 and "1 data files, 2 rows" in summary[0], proc.stderr


def test_params_reach_every_session(mariadb: MariaDBServer, backup: Path) -> None:
    proc = load_cli("-d", str(backup), *db_flags(mariadb), "--params", "no_such_var=1", env=_pw(mariadb))
    _one_error(proc, 3, "SET SESSION no_such_var")
    proc = load_cli("-d", str(backup), *db_flags(mariadb), "--params", "sql_log_bin=OFF", env=_pw(mariadb))
    assert proc.returncode == 0, proc.stderr


def test_corrupted_object_in_s3(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(50))")
    mariadb.execute("INSERT INTO t SELECT seq, REPEAT('w', 40) FROM seq_1_to_2000", database=fresh_db)
    creds = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    url = f"s3://{bucket}/b1"
    for name, value in creds.items():
        monkeypatch.setenv(name, value)
    dump(mariadb, url, "-B", fresh_db, *s3_flags(s3_server))
    key = f"b1/{fresh_db}.t.000000000.sql"
    client = s3_server.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 3] ^= 0x04  # one byte changed, same size
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    mariadb.drop_database(fresh_db)
    proc = load_cli("-d", url + "/", *db_flags(mariadb), *s3_flags(s3_server), env={**_pw(mariadb), **creds})
    _one_error(proc, 4, f"{fresh_db}.t.000000000.sql does not match its xxh128")
    assert "complete" not in proc.stderr


def test_missing_privileges_refused_before_writing_naming_the_grant(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """A restricted account: every privilege it lacks is named, with the GRANT that adds it, before
    anything is written (not even the checkpoint schema); once granted, the same load runs."""
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(20))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1, 'a'), (2, 'b')")
    dump(mariadb, tmp_path, "-B", fresh_db)
    mariadb.drop_database(fresh_db)
    mariadb.execute("DROP DATABASE IF EXISTS tibackup_load")
    user = f"lim_{fresh_db[-8:]}"
    mariadb.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'limited-pw'")
    try:
        mariadb.execute(f"GRANT SELECT, INSERT ON `{fresh_db}`.* TO '{user}'@'%'")
        conn = ["-h", mariadb.host, "-P", str(mariadb.port), "-u", user]
        proc = load_cli("-d", str(tmp_path), *conn, env={"TIBACKUP_DB_PASSWORD": "limited-pw"})
        assert proc.returncode == 3, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, proc.stderr
        assert f"lacks CREATE on `{fresh_db}`" in errors[0]
        assert f"GRANT CREATE ON `{fresh_db}`.* TO '{user}'@'%'" in errors[0]
        assert "CREATE, DELETE, INSERT, SELECT on `tibackup_load`" in errors[0], "the checkpoint's needs too"
        assert "--checkpoint=false" in errors[0]
        assert "Traceback" not in proc.stderr
        assert not mariadb.execute(f"SHOW DATABASES LIKE '{fresh_db}'"), "nothing was written"
        assert not mariadb.execute("SHOW DATABASES LIKE 'tibackup_load'"), "not even the checkpoint"
        config, _ = config_from_args(
            ["-d", str(tmp_path), *conn, "--checkpoint=false"], {"TIBACKUP_DB_PASSWORD": "limited-pw"}
        )
        with pytest.raises(InsufficientPrivileges) as info:
            run_load(config)
        assert info.value.reason == "InsufficientPrivileges" and "tibackup_load" not in info.value.message
        mariadb.execute(f"GRANT CREATE ON `{fresh_db}`.* TO '{user}'@'%'")
        proc = load_cli(
            "-d", str(tmp_path), *conn, "--checkpoint=false", env={"TIBACKUP_DB_PASSWORD": "limited-pw"}
        )
        assert proc.returncode == 0, proc.stderr
        assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.t")[0][0] == 2
    finally:
        mariadb.execute(f"DROP USER IF EXISTS '{user}'@'%'")
