"""The test environment itself: the real servers answer, and the S3 server checks signatures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server
from testenv.sampledata import load_many_tables, load_sample, load_wide_table

pytestmark = pytest.mark.integration


def test_mariadb_answers_with_binlog_position(mariadb: MariaDBServer) -> None:
    (version,) = mariadb.execute("SELECT VERSION()")[0]
    assert "MariaDB" in version
    status = mariadb.execute("SHOW MASTER STATUS")
    assert status, "binary logging must be on"
    file, position = status[0][0], int(status[0][1])
    assert file and position > 0


def test_mariadb_create_user_with_grants(mariadb: MariaDBServer, fresh_db: str) -> None:
    mariadb.create_user("tb_reader", "readerpw", [f"SELECT ON `{fresh_db}`.*"])
    conn = mariadb.connect(database=fresh_db, user="tb_reader", password="readerpw")
    try:
        cur = conn.cursor()
        cur.execute("SELECT CURRENT_USER(), DATABASE()")
        assert cur.fetchone() == ("tb_reader@%", fresh_db)
    finally:
        conn.close()


def test_sample_data_loads(mariadb: MariaDBServer, fresh_db: str) -> None:
    conn = mariadb.connect()
    try:
        counts = load_sample(conn, fresh_db, rows=50)
        names = load_many_tables(conn, fresh_db, tables=5, rows_each=10)
        load_wide_table(conn, fresh_db, "sbtest1", rows=1000)
    finally:
        conn.close()
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.customers")[0][0] == counts["customers"]
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.order_totals")[0][0] == counts["orders"]
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.`{names[-1]}`")[0][0] == 10
    assert mariadb.execute(f"SELECT COUNT(*), MAX(id) FROM `{fresh_db}`.sbtest1")[0] == (1000, 1000)


def test_s3_bucket_multipart_and_list(s3_server: S3Server, bucket: str) -> None:
    c = s3_server.client()
    c.put_object(Bucket=bucket, Key="dir/small.txt", Body=b"hello")
    up = c.create_multipart_upload(Bucket=bucket, Key="dir/big.bin")
    assert [u["UploadId"] for u in s3_server.list_multipart_uploads(bucket)] == [up["UploadId"]]
    part1, part2 = b"1" * (5 * 1024 * 1024), b"2" * 1000
    parts = []
    for number, body in ((1, part1), (2, part2)):
        r = c.upload_part(
            Bucket=bucket, Key="dir/big.bin", UploadId=up["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
    c.complete_multipart_upload(
        Bucket=bucket, Key="dir/big.bin", UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert s3_server.list_keys(bucket) == ["dir/big.bin", "dir/small.txt"]
    assert s3_server.list_keys(bucket, prefix="dir/s") == ["dir/small.txt"]
    assert s3_server.list_multipart_uploads(bucket) == []
    assert s3_server.get_bytes(bucket, "dir/big.bin") == part1 + part2


def test_s3_rejects_a_wrong_secret(s3_server: S3Server, bucket: str) -> None:
    bad = s3_server.bad_client()
    with pytest.raises(ClientError) as err:
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert err.value.response["Error"]["Code"] in (
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidAccessKeyId",
    )
    with pytest.raises(ClientError):
        bad.list_objects_v2(Bucket=bucket)
    assert s3_server.list_keys(bucket) == []


def test_started_servers_report_their_process(mariadb: MariaDBServer, s3_server: S3Server) -> None:
    """`python -m testenv status` and the benchmarks read pid and memory; attached servers have none."""
    import os

    if os.environ.get("TIBACKUP_TEST_REUSE") == "1":
        pytest.skip("the servers were attached, not started by this session")
    for server in (mariadb, s3_server):
        assert isinstance(server.pid, int) and server.pid > 0, type(server).__name__
        assert server.rss_bytes() > 10_000_000, type(server).__name__
    assert S3Server.attach(s3_server.endpoint, s3_server.access_key, s3_server.secret_key).pid is None


def test_a_server_process_that_exits_fails_the_wait_at_once(tmp_path: Path) -> None:

    from testenv._proc import ServerStartError, wait_for_server

    log = tmp_path / "server.log"
    log.write_text("bind: address already in use\n")
    proc = subprocess.Popen(["sh", "-c", "exit 3"])
    proc.wait()
    stopped: list[bool] = []
    with pytest.raises(ServerStartError, match=r"(?s)weed exited with 3; log: .*address already in use"):
        wait_for_server(lambda: False, 60, "S3", log, lambda: stopped.append(True), procs={"weed": proc})
    assert stopped == [], "a process that died is reported, not waited for until the timeout"
