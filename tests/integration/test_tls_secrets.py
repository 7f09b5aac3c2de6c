"""A Backup whose database needs a TLS client certificate (``tlsClientSecretName``): MariaDB Connector/C
reads the Secret's ca.crt/tls.crt/tls.key from memory files, and a run killed with SIGKILL leaves no key
file behind in $TMPDIR (before, ``tibackup-tls-*/tls.key`` stayed there for good)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.faults import apply_wait_process, load_big_table, wait_for
from tests.integration.test_embedded_cli import DB_PASSWORD_SECRET, S3_SECRET, Env, backup_doc
from tibackup.embedded.controller import Controller
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.resources import Backup

pytestmark = pytest.mark.integration

TLS_SECRET = "db-tls"
TLS_USER, TLS_PASSWORD = "tlsuser", "tls-user-pw-1"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"openssl cannot make test certificates: {done.stderr[-300:]}")


def make_certificates(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    folder.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tibackup-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", f"/CN={TLS_USER}")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "1", "-extfile", "san.cnf", "-out", f"{name}.crt", cwd=folder)  # fmt: skip


@pytest.fixture()
def tls_env(tmp_path: Path, s3_server: S3Server, bucket: str) -> Iterator[Env]:
    certs = tmp_path / "certs"
    make_certificates(certs)
    server = MariaDBServer(
        tmp_path / "db",
        extra_args=[f"--ssl-ca={certs / 'ca.crt'}", f"--ssl-cert={certs / 'server.crt'}",
                    f"--ssl-key={certs / 'server.key'}"],
    )  # fmt: skip
    with server:
        server.execute(f"CREATE USER '{TLS_USER}'@'%' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE X509")
        server.execute(
            f"GRANT SELECT, RELOAD, LOCK TABLES, BINLOG MONITOR, SHOW VIEW ON *.* TO '{TLS_USER}'@'%'"
        )
        load_big_table(server, "tlsdb", rows=300_000)
        env = Env(tmp_path / "state", bucket, "tlsdb", server, s3_server)
        for name, flags in (
            (S3_SECRET, [f"--from-literal=access_key={s3_server.access_key}",
                         f"--from-literal=secret_key={s3_server.secret_key}"]),
            (DB_PASSWORD_SECRET, [f"--from-literal=password={TLS_PASSWORD}"]),
            (TLS_SECRET, [f"--from-file=ca.crt={certs / 'ca.crt'}", f"--from-file=tls.crt={certs / 'client.crt'}",
                          f"--from-file=tls.key={certs / 'client.key'}"]),
        ):  # fmt: skip
            result = env.tib("create", "secret", "generic", name, "-n", "test1", *flags)
            assert result.code == 0, result
        yield env


def tls_doc(env: Env, name: str) -> dict[str, object]:
    source = {"host": env.mariadb.host, "port": env.mariadb.port, "user": TLS_USER,
              "secretName": DB_PASSWORD_SECRET, "tlsClientSecretName": TLS_SECRET}  # fmt: skip
    return backup_doc(env, name, dumpling={"options": ["--threads=2", "--rows=50000"]}, **{"from": source})


def test_backup_over_tls_with_a_client_certificate_completes(tls_env: Env) -> None:
    """The user REQUIRE X509: no session (nor the C row reader that borrows it) works without the
    certificate and key read from the memory files."""
    result = tls_env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(tls_doc(tls_env, "tls")))
    assert result.code == 0, result
    backup = Store(tls_env.state).get(KIND_BACKUP, "test1", "tls")
    assert isinstance(backup, Backup) and backup.status.phase == "Complete", backup.status


def test_sigkill_leaves_no_tls_key_file(tls_env: Env, tmp_path: Path) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    process = apply_wait_process(
        tls_env.state, tls_doc(tls_env, "killed"), env={**os.environ, "TMPDIR": str(scratch)}
    )
    store = Store(tls_env.state)

    def running() -> bool:
        backup = store.get(KIND_BACKUP, "test1", "killed")
        return isinstance(backup, Backup) and backup.status.phase == "Running"

    wait_for(running, 60, "the backup to run", interval=0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    controller = Controller(tls_env.state)  # its recovery pass: the run is gone
    try:
        controller.tick()
    finally:
        controller.store.close()
    backup = store.get(KIND_BACKUP, "test1", "killed")
    assert isinstance(backup, Backup) and backup.status.phase == "Failed", backup.status
    left = [str(p) for p in scratch.rglob("*")]
    assert left == [], f"key material outlived the killed process: {left}"
