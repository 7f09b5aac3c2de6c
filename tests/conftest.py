"""Shared fixtures: one real MariaDB and one real S3 server per pytest session, started on first use.

Pure unit tests never request these fixtures, so they never start a server. With TIBACKUP_TEST_REUSE=1
and the TIBACKUP_TEST_* variables of `python -m testenv up` (source .run/env.sh) the fixtures attach to
those running servers instead of starting their own.
"""

from __future__ import annotations

import atexit
import os
import re
import socket
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from testenv._proc import ServerStartError
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server, clean_aws_env, make_s3_server

from tibackup.cli.listen import METRICS_PORT


def pytest_configure(config: pytest.Config) -> None:
    # The machine's AWS_CA_BUNDLE, a developer's AWS_PROFILE or AWS_REGION must not change what the code
    # under test does; tests that need such variables set them with monkeypatch.
    clean_aws_env()
    # `tibackup dump` notes its S3 uploads in a journal under the user's home by default: not in tests.
    os.environ.setdefault("TIBACKUP_UPLOAD_JOURNAL", tempfile.mkdtemp(prefix="tibackup-test-journal-"))


@pytest.fixture(scope="session", autouse=True)
def default_metrics_port_held() -> Iterator[None]:
    """Hold 127.0.0.1:9840, the default metrics port of ``tibackup controller`` and ``tibackup
    operator``, for the whole session: a test that starts either without a free port of its own
    (``testenv._proc.free_port``, or ``--metrics-port 0``) fails at once instead of colliding with
    another suite running on this machine. Already held (another suite, a real controller): so be it."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", METRICS_PORT))
        holder.listen()
    except OSError:
        holder.close()
        yield
        return
    try:
        yield
    finally:
        holder.close()


def _reuse() -> bool:
    return os.environ.get("TIBACKUP_TEST_REUSE", "") in ("1", "true", "yes")


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """A running MariaDB 10.11 (root/`mariadb.password` over TCP on 127.0.0.1:`mariadb.port`)."""
    env = os.environ
    if _reuse() and env.get("TIBACKUP_TEST_MYSQL_PORT"):
        yield MariaDBServer.attach(
            env.get("TIBACKUP_TEST_MYSQL_HOST", "127.0.0.1"),
            int(env["TIBACKUP_TEST_MYSQL_PORT"]),
            env.get("TIBACKUP_TEST_MYSQL_USER", "root"),
            env.get("TIBACKUP_TEST_MYSQL_PASSWORD", "rootpw"),
        )
        return
    server = MariaDBServer()
    try:
        server.start()
    except ServerStartError as e:
        server.stop(remove=False)
        pytest.fail(f"could not start MariaDB (log: {server.log_file}): {e}", pytrace=False)
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A running, warmed-up S3 server (SeaweedFS, or Ceph RGW with TIBACKUP_TEST_S3=ceph) that checks
    signatures; `s3_server.client()` is a boto3 client with its credentials."""
    env = os.environ
    if _reuse() and env.get("TIBACKUP_TEST_S3_ENDPOINT"):
        yield S3Server.attach(
            env["TIBACKUP_TEST_S3_ENDPOINT"],
            env.get("TIBACKUP_TEST_S3_ACCESS_KEY", ""),
            env.get("TIBACKUP_TEST_S3_SECRET_KEY", ""),
            env.get("TIBACKUP_TEST_S3_REGION", "us-east-1"),
        )
        return
    server = make_s3_server()
    try:
        server.start()
        server.warm_up()
    except ServerStartError as e:
        server.stop(remove=False)
        pytest.fail(
            f"could not start the {server.provider} S3 server (log: {server.log_file}): {e}", pytrace=False
        )
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


def _unique(request: pytest.FixtureRequest, sep: str, limit: int) -> str:
    base = re.sub(r"[^a-z0-9]+", sep, request.node.name.lower()).strip(sep)
    suffix = uuid.uuid4().hex[:8]
    return f"t{sep}{base[: limit - len(suffix) - 3]}{sep}{suffix}"


@pytest.fixture()
def bucket(s3_server: S3Server, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty, uniquely named bucket; emptied and deleted after the test."""
    name = _unique(request, "-", 63)
    s3_server.create_bucket(name)
    try:
        yield name
    finally:
        try:
            s3_server.delete_bucket(name)
        except Exception as e:  # cleanup must not hide the test's own result
            print(f"warning: could not delete bucket {name}: {e}")


@pytest.fixture()
def fresh_db(mariadb: MariaDBServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The name of a fresh, empty, uniquely named database; dropped after the test."""
    name = _unique(request, "_", 60)
    mariadb.create_database(name)
    try:
        yield name
    finally:
        try:
            mariadb.drop_database(name)
        except Exception as e:
            print(f"warning: could not drop database {name}: {e}")
