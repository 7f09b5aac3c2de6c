"""The embedded runtime's verbs end to end on the real MariaDB and S3 servers: apply --wait, get, describe,
delete per cleanPolicy, Secrets, validation errors. (Helpers here are shared with the controller tests.)"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from testenv import sampledata
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tibackup.cli.main import main

pytestmark = pytest.mark.integration

DB_PASSWORD_SECRET = "backup-demo1-tidb-secret"
S3_SECRET = "s3-secret"


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Env:
    state: Path
    bucket: str
    database: str
    mariadb: MariaDBServer
    s3: S3Server

    def tib(self, *args: str, stdin: str | None = None) -> Result:
        return tib(*args, "--state-dir", str(self.state), stdin=stdin)

    def backup_yaml(self, name: str, **spec: Any) -> str:
        return yaml.safe_dump(backup_doc(self, name, **spec))


def tib(*args: str, stdin: str | None = None) -> Result:
    """Run ``tibackup`` in this process as the console script does (one-line errors, exit codes)."""
    runner = CliRunner()
    with runner.isolation(input=stdin) as (out, err, *_):
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        result = Result(code, out.getvalue().decode(), err.getvalue().decode())
    logging.getLogger().handlers.clear()  # setup_logging pointed them at the captured streams
    return result


def backup_spec(env: Env, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "from": {
            "host": env.mariadb.host,
            "port": env.mariadb.port,
            "user": "root",
            "secretName": DB_PASSWORD_SECRET,
        },
        "s3": {
            "provider": "ceph",
            "secretName": S3_SECRET,
            "endpoint": env.s3.endpoint,
            "bucket": env.bucket,
        },
        "tableFilter": [f"{env.database}.*"],
        "dumpling": {"options": ["--threads=2"]},
    }
    spec.update(extra)
    return spec


def backup_doc(env: Env, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": "test1"},
        "spec": backup_spec(env, **extra),
    }


@pytest.fixture(name="env")
def env_fixture(
    tmp_path: Path, mariadb: MariaDBServer, s3_server: S3Server, bucket: str, fresh_db: str
) -> Iterator[Env]:
    conn = mariadb.connect()
    try:
        sampledata.load_sample(conn, fresh_db, rows=200)
    finally:
        conn.close()
    environment = Env(tmp_path / "state", bucket, fresh_db, mariadb, s3_server)
    created = environment.tib(
        "create", "secret", "generic", S3_SECRET, "-n", "test1",
        f"--from-literal=access_key={s3_server.access_key}",
        f"--from-literal=secret_key={s3_server.secret_key}",
    )  # fmt: skip
    assert created.code == 0 and created.out == f"secret/{S3_SECRET} created\n", created
    created = environment.tib(
        "create", "secret", "generic", DB_PASSWORD_SECRET, "-n", "test1",
        f"--from-literal=password={mariadb.password}",
    )  # fmt: skip
    assert created.code == 0, created
    yield environment


def get_json(env: Env, *args: str) -> Any:
    result = env.tib("get", *args, "-n", "test1", "-o", "json")
    assert result.code == 0, result
    return json.loads(result.out)


def keys_under(env: Env, backup_path: str) -> list[str]:
    prefix = backup_path.removeprefix(f"s3://{env.bucket}/")
    return env.s3.list_keys(env.bucket, prefix)


def test_apply_wait_completes_with_every_file_in_s3(env: Env) -> None:
    result = env.tib("apply", "-f", "-", "--wait", stdin=env.backup_yaml("adhoc"))
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == "backup.pingcap.com/adhoc created"
    assert lines[1].split()[:3] == ["NAME", "TYPE", "STATUS"] and "STARTED" in lines[1]
    assert lines[2].split()[:3] == ["adhoc", "full", "Complete"]
    backup = get_json(env, "bk", "adhoc")
    status = backup["status"]
    assert status["phase"] == "Complete" and status["backupSize"] > 0 and status["commitTs"]
    keys = keys_under(env, status["backupPath"])
    names = {k.rsplit("/", 1)[-1] for k in keys}
    db = env.database
    assert {"metadata", f"{db}-schema-create.sql", f"{db}.customers-schema.sql"} <= names
    for table in ("customers", "orders", "order_items", "events"):
        assert f"{db}.{table}.000000000.sql" in names, (table, sorted(names))
    # Applying it again changes nothing and does not run it twice.
    again = env.tib("apply", "-f", "-", "--wait", stdin=env.backup_yaml("adhoc"))
    assert again.code == 0 and "backup.pingcap.com/adhoc unchanged" in again.out
    assert get_json(env, "bk", "adhoc")["status"]["backupPath"] == status["backupPath"]


def test_get_outputs_parse(env: Env) -> None:
    schedule = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "nightly", "namespace": "test1"},
        "spec": {"schedule": "0 2 * * *", "maxBackups": 3, "backupTemplate": backup_spec(env)},
    }
    text = yaml.safe_dump_all([backup_doc(env, "one"), schedule])
    assert env.tib("apply", "-f", "-", stdin=text).code == 0
    listing = get_json(env, "bk")
    assert listing["kind"] == "List" and [i["metadata"]["name"] for i in listing["items"]] == ["one"]
    one = yaml.safe_load(env.tib("get", "bk", "one", "-n", "test1", "-o", "yaml").out)
    assert one["kind"] == "Backup" and one["metadata"]["uid"] and one["spec"]["s3"]["bucket"] == env.bucket
    bks = get_json(env, "bks", "nightly")
    assert bks["spec"]["schedule"] == "0 2 * * *" and bks["spec"]["maxBackups"] == 3
    assert env.tib("get", "bks", "-n", "test1", "-o", "name").out == "backupschedule.pingcap.com/nightly\n"
    wide = env.tib("get", "bks", "-n", "test1", "-o", "wide").out.splitlines()
    assert wide[0].split() == [
        "NAME",
        "SCHEDULE",
        "MAXBACKUPS",
        "MAXRESERVEDTIME",
        "LASTBACKUP",
        "LASTBACKUPTIME",
        "AGE",
    ]
    assert wide[1].split()[:7] == ["nightly", "0", "2", "*", "*", "*", "3"]
    everywhere = env.tib("get", "bk", "-A").out.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"] and everywhere[1].split()[:2] == [
        "test1",
        "one",
    ]
    missing = env.tib("get", "bk", "nope", "-n", "test1")
    assert (
        missing.code == 1  # kubectl exits 1 for NotFound
        and missing.err.strip() == 'error: backups.pingcap.com "nope" not found in namespace "test1"'
    )
    empty = env.tib("get", "bk", "-n", "elsewhere")
    assert empty.code == 0 and empty.err.strip() == "No resources found in elsewhere namespace."
    described = env.tib("describe", "bks", "nightly", "-n", "test1")
    assert described.code == 0 and "Schedule:" in described.out and "Backup Template:" in described.out


def test_bad_cron_is_rejected_and_nothing_stored(env: Env) -> None:
    schedule = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "bad", "namespace": "test1"},
        "spec": {"schedule": "*/2 * * *", "backupTemplate": backup_spec(env)},
    }
    text = yaml.safe_dump_all([backup_doc(env, "fine"), schedule])
    result = env.tib("apply", "-f", "-", stdin=text)
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("error: spec.schedule: ") and "cron needs exactly 5" in result.err
    assert get_json(env, "bk")["items"] == [] and get_json(env, "bks")["items"] == []
    unknown = env.tib("apply", "-f", "-", stdin=env.backup_yaml("x", cleanPolicy="Sometimes"))
    assert unknown.code == 2 and unknown.err.startswith("error: spec.cleanPolicy: ")


def test_missing_secret_fails_with_reason(env: Env) -> None:
    doc = backup_doc(env, "nosecret")
    doc["spec"]["from"]["secretName"] = "does-not-exist"
    result = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
    assert result.code == 1
    assert "Failed" in result.out and "does-not-exist" in result.err
    status = get_json(env, "bk", "nosecret")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert status["phase"] == "Failed" and "does-not-exist" in failed["message"] and failed["reason"]


@pytest.mark.parametrize(
    "policy,failed,kept",
    [
        ("Retain", False, True),
        ("Delete", False, False),
        ("OnFailure", False, True),
        ("OnFailure", True, False),
    ],
)
def test_delete_per_clean_policy(env: Env, policy: str, failed: bool, kept: bool) -> None:
    doc = backup_doc(env, "victim", cleanPolicy=policy)
    if failed:  # fails while running (after it got its backupPath): --where names a column no table has
        doc["spec"]["dumpling"]["options"] = ["--threads=2", "--where=no_such_column > 0"]
    result = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
    status = get_json(env, "bk", "victim")["status"]
    assert status["phase"] == ("Failed" if failed else "Complete"), (result, status)
    path = status.get("backupPath")
    assert path, status
    if not failed:
        assert keys_under(env, path)
    deleted = env.tib("delete", "bk", "victim", "-n", "test1")
    assert deleted.code == 0, deleted
    assert deleted.out == 'backup.pingcap.com "victim" deleted\n'
    assert env.tib("get", "bk", "victim", "-n", "test1").code == 1
    remaining = keys_under(env, path)
    if kept:
        assert remaining
    else:
        assert remaining == []


def test_secret_values_never_shown_and_state_private(env: Env) -> None:
    secret_values = [env.s3.secret_key, env.mariadb.password]
    wrong = "Wr0ng-Passw0rd-For-Leak-Test"
    assert (
        env.tib(
            "create", "secret", "generic", "wrong-pw", "-n", "test1", f"--from-literal=password={wrong}"
        ).code
        == 0
    )
    doc = backup_doc(env, "leaky")
    doc["spec"]["from"]["secretName"] = "wrong-pw"
    ran = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
    assert ran.code == 1
    outputs = [ran.out, ran.err]
    for args in (
        ("get", "secret", "-n", "test1"),
        ("get", "secret", "-A", "-o", "yaml"),
        ("get", "secret", S3_SECRET, "-n", "test1", "-o", "json"),
        ("get", "bk", "-n", "test1", "-o", "yaml"),
        ("get", "bk", "-n", "test1", "-o", "wide"),
        ("describe", "bk", "leaky", "-n", "test1"),
    ):
        result = env.tib(*args)
        assert result.code == 0, (args, result)
        outputs += [result.out, result.err]
    listing = env.tib("get", "secret", "-n", "test1").out.splitlines()
    assert listing[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert [line.split()[:3] for line in listing[1:]] == [
        [DB_PASSWORD_SECRET, "Opaque", "1"], [S3_SECRET, "Opaque", "2"], ["wrong-pw", "Opaque", "1"],
    ]  # fmt: skip
    text = "\n".join(outputs)
    assert "Events:" in text and "leaky" in text
    for value in [*secret_values, wrong]:
        assert value not in text
    assert stat.S_IMODE(env.state.stat().st_mode) == 0o700
    for file in env.state.glob("state.db*"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert env.tib("delete", "secret", "wrong-pw", "-n", "test1").out == 'secret "wrong-pw" deleted\n'


def test_embedded_accepts_tibackups_own_api_group(env: Env) -> None:
    """YAML written for the beside-TiDB-Operator install (backup.tibackup.io) runs embedded as well."""
    doc = backup_doc(env, "own-group")
    doc["apiVersion"] = "backup.tibackup.io/v1alpha1"
    result = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
    assert result.code == 0, result
    backup = get_json(env, "bk", "own-group")
    assert backup["apiVersion"] == "backup.tibackup.io/v1alpha1"
    assert backup["status"]["phase"] == "Complete"
    doc["apiVersion"] = "tibackup.io/v1"
    refused = env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert refused.code == 2
    assert "pingcap.com/v1alpha1 or backup.tibackup.io/v1alpha1" in refused.err
