"""The Restore resource end to end on real servers: a Backup taken with `apply --wait` restored with
`apply --wait` into a second MariaDB (CHECKSUM TABLE equal), `get rt`/`describe rt`/`delete rt`, and the
failures a Restore must name in one line: corrupted object, non-empty target, missing Secret, wrong path,
wrong password, unreachable S3; a killed Restore recovered to Failed/Interrupted and resumed by a re-run."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import checksums, dump
from tests.integration.test_embedded_cli import S3_SECRET, Env, env_fixture, get_json  # noqa: F401
from tibackup.embedded.controller import Controller

pytestmark = pytest.mark.integration

TARGET_SECRET = "restore-target-secret"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A second MariaDB: the database a backup is restored into (the same name cannot clash there)."""
    server = MariaDBServer(tmp_path_factory.mktemp("target") / "mdb").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def renv(env: Env, target: MariaDBServer) -> Iterator[Env]:
    created = env.tib(
        "create", "secret", "generic", TARGET_SECRET, "-n", "test1", f"--from-literal=password={target.password}"
    )  # fmt: skip
    assert created.code == 0, created
    yield env
    target.execute(f"DROP DATABASE IF EXISTS `{env.database}`")
    target.execute("DROP DATABASE IF EXISTS tibackup_load")


def tables(server: MariaDBServer, database: str) -> list[str]:
    rows = server.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'"
        " ORDER BY table_name",
        (database,),
    )
    return [str(r[0]) for r in rows]


def take_backup(env: Env, name: str = "source") -> dict[str, Any]:
    result = env.tib("apply", "-f", "-", "--wait", stdin=env.backup_yaml(name))
    assert result.code == 0, result
    backup = get_json(env, "bk", name)
    assert backup["status"]["phase"] == "Complete", backup
    return dict(backup)


def restore_doc(env: Env, name: str, server: MariaDBServer, secret: str = TARGET_SECRET, **spec: Any) -> str:
    body: dict[str, Any] = {
        "backupType": "full",
        "to": {"host": server.host, "port": server.port, "user": "root", "secretName": secret},
        "tibackup": {"threads": 2},
    }
    body.update(spec)
    doc = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": "test1"},
    }
    return yaml.safe_dump({**doc, "spec": body})


def s3_block(env: Env, **extra: Any) -> dict[str, Any]:
    return {"provider": "ceph", "endpoint": env.s3.endpoint, "secretName": S3_SECRET, **extra}


def apply_restore(env: Env, text: str) -> tuple[int, dict[str, Any], str]:
    result = env.tib("apply", "-f", "-", "--wait", stdin=text)
    name = yaml.safe_load(text)["metadata"]["name"]
    restore = get_json(env, "rt", name)
    return result.code, restore, result.out + result.err


def condition(restore: dict[str, Any]) -> dict[str, Any]:
    phase = restore["status"]["phase"]
    (cond,) = [c for c in restore["status"]["conditions"] if c["type"] == phase]
    return dict(cond)


def test_backup_restore_round_trip_through_the_cli(renv: Env, target: MariaDBServer) -> None:
    env = renv
    backup = take_backup(env)
    names = tables(env.mariadb, env.database)
    assert len(names) >= 4
    code, restore, output = apply_restore(
        env, restore_doc(env, "back", target, tibackup={"threads": 2, "fromBackup": "source"})
    )
    assert code == 0, output
    assert "restore.pingcap.com/back created" in output
    status = restore["status"]
    assert status["phase"] == "Complete", status
    assert status["backupPath"] == backup["status"]["backupPath"]
    assert status["commitTs"] == backup["status"]["commitTs"]
    assert status["restoredRows"] > 0 and status["backupSize"] > 0 and status["timeTaken"]
    assert tables(target, env.database) == names
    assert checksums(target, env.database, names) == checksums(env.mariadb, env.database, names)
    # Views come back as the backup has them (Dumpling's default, and the Backup's, is --no-views).
    keys = env.s3.list_keys(env.bucket, backup["status"]["backupPath"].removeprefix(f"s3://{env.bucket}/"))
    dumped = sorted(
        k.rsplit(".", 1)[0].rsplit(".", 1)[-1].removesuffix("-schema-view")
        for k in keys
        if k.endswith("-schema-view.sql")
    )
    views = "SELECT table_name FROM information_schema.views WHERE table_schema = %s ORDER BY 1"
    assert [r[0] for r in target.execute(views, (env.database,))] == dumped

    wide = env.tib("get", "rt", "-n", "test1", "-o", "wide").out.splitlines()
    assert wide[0].split() == ["NAME", "STATUS", "STARTED", "COMPLETED", "TIMETAKEN", "COMMITTS", "AGE"]
    assert wide[1].split()[:2] == ["back", "Complete"]
    as_yaml = yaml.safe_load(env.tib("get", "restore", "back", "-n", "test1", "-o", "yaml").out)
    assert as_yaml["kind"] == "Restore" and as_yaml["spec"]["tibackup"]["fromBackup"] == "source"
    described = env.tib("describe", "rt", "back", "-n", "test1")
    assert described.code == 0 and "Kind:         Restore" in described.out and "Complete" in described.out
    assert "Loaded" in described.out  # the event of the load
    for secret in (env.mariadb.password, env.s3.secret_key):
        assert secret not in described.out and secret not in json.dumps(restore)
    deleted = env.tib("delete", "rt", "back", "-n", "test1")
    assert deleted.code == 0 and 'restore.pingcap.com "back" deleted' in deleted.out
    assert env.tib("get", "rt", "back", "-n", "test1").code == 1  # NotFound exits 1, as kubectl
    # The restored rows stay: deleting a Restore never touches the target.
    assert checksums(target, env.database, names) == checksums(env.mariadb, env.database, names)


def test_restore_by_s3_path(renv: Env, target: MariaDBServer) -> None:
    env = renv
    path = take_backup(env)["status"]["backupPath"]
    names = tables(env.mariadb, env.database)
    code, restore, output = apply_restore(
        env, restore_doc(env, "by-path", target, s3=s3_block(env, path=path.removeprefix("s3://")))
    )
    assert code == 0 and restore["status"]["phase"] == "Complete", output
    assert checksums(target, env.database, names) == checksums(env.mariadb, env.database, names)


def test_corrupted_object_fails_verify(renv: Env, target: MariaDBServer) -> None:
    env = renv
    path = take_backup(env)["status"]["backupPath"]
    prefix = path.removeprefix(f"s3://{env.bucket}/")
    key = next(k for k in env.s3.list_keys(env.bucket, prefix) if k.endswith(".customers.000000000.sql"))
    client = env.s3.client()
    raw = bytearray(client.get_object(Bucket=env.bucket, Key=key)["Body"].read())
    raw[len(raw) // 2] ^= 0x01  # one byte changed, same size
    client.put_object(Bucket=env.bucket, Key=key, Body=bytes(raw))
    code, restore, output = apply_restore(
        env, restore_doc(env, "bad", target, tibackup={"fromBackup": "source"})
    )
    assert code != 0 and "Traceback" not in output
    assert "error: restore bad Failed: VerifyFailed: " in output
    assert restore["status"]["phase"] == "Failed", restore
    cond = condition(restore)
    assert cond["reason"] == "VerifyFailed"
    assert "customers.000000000.sql" in cond["message"] and "\n" not in cond["message"]
    assert "Complete" not in [c["type"] for c in restore["status"]["conditions"]]


def test_non_empty_target_refused_naming_tables(renv: Env) -> None:
    env = renv
    take_backup(env)
    before = checksums(env.mariadb, env.database, tables(env.mariadb, env.database))
    # Restoring into the very database the backup came from: its tables hold rows.
    code, restore, output = apply_restore(
        env,
        restore_doc(
            env,
            "onto-itself",
            env.mariadb,
            secret="backup-demo1-tidb-secret",
            tibackup={"fromBackup": "source"},
        ),
    )
    assert code != 0 and restore["status"]["phase"] == "Failed" and "Traceback" not in output
    cond = condition(restore)
    assert cond["reason"] == "TargetNotEmpty"
    assert (
        f"{env.database}.customers" in cond["message"] or f"`{env.database}`.`customers`" in cond["message"]
    )
    assert checksums(env.mariadb, env.database, tables(env.mariadb, env.database)) == before


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "case", ["missing-secret", "wrong-path", "wrong-password", "unreachable-s3", "no-backup"]
)
def test_failures_are_one_clear_line(renv: Env, target: MariaDBServer, case: str) -> None:
    env = renv
    path = take_backup(env)["status"]["backupPath"] if case in ("wrong-password", "unreachable-s3") else ""
    spec: dict[str, Any] = {"s3": s3_block(env, path=path or f"s3://{env.bucket}/nothing-here/")}
    secret = TARGET_SECRET
    if case == "missing-secret":
        secret = "no-such-secret"
    if case == "wrong-password":
        assert (
            env.tib(
                "create",
                "secret",
                "generic",
                "wrong-pw",
                "-n",
                "test1",
                "--from-literal=password=Wr0ngPassw0rd",
            ).code
            == 0
        )
        secret = "wrong-pw"
    if case == "unreachable-s3":
        spec["s3"]["endpoint"] = f"http://127.0.0.1:{_closed_port()}"
    if case == "no-backup":
        spec = {"tibackup": {"fromBackup": "never-taken"}}
    code, restore, output = apply_restore(env, restore_doc(env, "fails", target, secret=secret, **spec))
    assert code != 0 and restore["status"]["phase"] == "Failed", restore
    cond = condition(restore)
    message = cond["message"]
    assert "\n" not in message and "Traceback" not in output and "Wr0ngPassw0rd" not in message + output
    expected = {
        "missing-secret": ("SecretNotFound", "no-such-secret"),
        "wrong-path": (None, "nothing-here"),
        "wrong-password": ("AccessDenied", "wrong-pw"),
        "unreachable-s3": (None, "127.0.0.1"),
        "no-backup": ("BackupNotFound", "never-taken"),
    }[case]
    if expected[0]:
        assert cond["reason"] == expected[0], cond
    assert expected[1] in message, cond
    assert not tables(target, env.database), "nothing was written"


def _committed(server: MariaDBServer, database: str) -> int:
    """Groups of statements committed so far (one checkpoint row each)."""
    sql = "SELECT COUNT(*) FROM tibackup_load.checkpoints WHERE pos >= 0 AND file LIKE %s"
    try:
        return int(server.execute(sql, (database + ".%",))[0][0])
    except Exception:
        return 0  # the checkpoint table is not there yet


def test_killed_restore_is_recovered_and_a_rerun_resumes(renv: Env, target: MariaDBServer) -> None:
    env = renv
    # A table without a key: a statement loaded twice would show in its checksum.
    env.mariadb.execute(f"CREATE TABLE `{env.database}`.nk (a INT, b VARCHAR(60))")
    env.mariadb.execute(
        "INSERT INTO nk SELECT seq % 1000, CONCAT('row ', seq, REPEAT('y', seq % 40)) FROM seq_1_to_40000",
        database=env.database,
    )
    # Small statements in small files: the load commits one group of statements per file here, so
    # many files make many transactions and the kill lands between two of them.
    backup = env.backup_yaml(
        "source", dumpling={"options": ["--threads=2", "--statement-size=4000", "--filesize=64KiB"]}
    )
    assert env.tib("apply", "-f", "-", "--wait", stdin=backup).code == 0
    names = tables(env.mariadb, env.database)
    text = restore_doc(env, "killed", target, tibackup={"fromBackup": "source", "threads": 1})
    assert env.tib("apply", "-f", "-", stdin=text).code == 0
    command = [sys.executable, "-m", "tibackup.cli.main", "run-restore", "-n", "test1", "killed",
               "--state-dir", str(env.state)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a bound against hangs, not a timing assertion
    while _committed(target, env.database) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the restore finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert get_json(env, "rt", "killed")["status"]["phase"] == "Running"

    controller = Controller(env.state, interval=0.1)  # finds the dead process
    try:
        controller.recover_dead()
        controller.reconcile_restores()
    finally:
        controller.store.close()
    recovered = get_json(env, "rt", "killed")
    assert recovered["status"]["phase"] == "Failed" and condition(recovered)["reason"] == "Interrupted"
    assert "run it again" in condition(recovered)["message"]
    rerun = env.tib("rerun", "rt", "killed", "-n", "test1", "--wait")
    assert rerun.code == 0, rerun
    done = get_json(env, "rt", "killed")
    assert done["status"]["phase"] == "Complete", done
    assert "resumed from its checkpoint" in env.tib("describe", "rt", "killed", "-n", "test1").out
    # Exactly the backup's rows: no statement twice, none missing.
    assert checksums(target, env.database, names) == checksums(env.mariadb, env.database, names)


def test_tidb_operator_tgz_by_path(
    renv: Env, target: MariaDBServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A TiDB Operator Dumpling backup (`tar czf backup-<time>.tgz backup-<time>/`) named by `spec.s3.path`."""
    env = renv
    work = tmp_path_factory.mktemp("tgz")
    name = "backup-2026-12-01T08:00:00Z"
    dump(env.mariadb, work / name, "-B", env.database, "--no-views=false", "-r", "100")
    subprocess.run(["tar", "--force-local", "-czf", f"{name}.tgz", f"{name}/"], cwd=work, check=True)
    env.s3.client().upload_file(str(work / f"{name}.tgz"), env.bucket, f"tidb/{name}.tgz")
    names = tables(env.mariadb, env.database)
    path = f"s3://{env.bucket}/tidb/{name}.tgz"
    code, restore, output = apply_restore(
        env, restore_doc(env, "from-tgz", target, s3=s3_block(env, path=path))
    )
    assert code == 0 and restore["status"]["phase"] == "Complete", output
    assert restore["status"]["backupPath"] == path
    assert checksums(target, env.database, names) == checksums(env.mariadb, env.database, names)
    views = "SELECT table_name FROM information_schema.views WHERE table_schema = %s ORDER BY 1"
    assert target.execute(views, (env.database,)) == env.mariadb.execute(views, (env.database,))


def test_a_restores_errors_name_its_fields_and_a_second_restore_says_already_restored(
    renv: Env, target: MariaDBServer
) -> None:
    env = renv
    take_backup(env)
    code, first, output = apply_restore(env, restore_doc(env, "first", target, tibackup={"fromBackup": "source"}))
    assert code == 0 and first["status"]["phase"] == "Complete", output
    # The same backup again, into the same database: the load's finished mark says it is there.
    code, again, output = apply_restore(env, restore_doc(env, "again", target, tibackup={"fromBackup": "source"}))
    assert code == 0 and again["status"]["phase"] == "Complete", output
    assert condition(again)["message"].startswith("already restored: "), condition(again)
    assert again["status"]["restoredRows"] == first["status"]["restoredRows"]
    # Without the mark the tables are someone else's: refused, naming the Restore's field, not a flag.
    target.execute("DROP DATABASE tibackup_load")
    code, refused, output = apply_restore(env, restore_doc(env, "onto", target, tibackup={"fromBackup": "source"}))
    cond = condition(refused)
    assert code == 1 and cond["reason"] == "TargetNotEmpty", output
    assert "spec.tibackup.onDuplicate: replace" in cond["message"] and "--on-duplicate" not in cond["message"]
    # A tableFilter that matches no table of the backup: Failed, not "Complete, 0 rows".
    code, typo, output = apply_restore(
        env,
        restore_doc(env, "typo", target, tableFilter=[f"{env.database}x.*"], tibackup={"fromBackup": "source"}),
    )
    cond = condition(typo)
    assert code == 1 and cond["reason"] == "FilterMatchesNothing", output
    assert "spec.tableFilter" in cond["message"] and f"{env.database}.customers" in cond["message"]
    assert "Traceback" not in output


def _restore_waiting_on_a_lock(
    env: Env, target: MariaDBServer, tmp_path: Any, name: str
) -> tuple[subprocess.Popen[str], Any, list[str]]:
    """`apply -f restore.yaml --wait` in a process of its own, its load waiting for sure: an empty copy
    of one table in the target, locked by the test. (the process, the locking connection, the tables)"""
    take_backup(env)
    names = tables(env.mariadb, env.database)
    target.execute(f"CREATE DATABASE `{env.database}`")
    create = env.mariadb.execute(f"SHOW CREATE TABLE `{env.database}`.`{names[0]}`")[0][1]
    target.execute(create, database=env.database)
    locker = target.connect(database=env.database)
    locker.cursor().execute(f"LOCK TABLES `{names[0]}` READ")
    path = tmp_path / "restore.yaml"
    path.write_text(restore_doc(env, name, target, tibackup={"fromBackup": "source", "threads": 1}))
    command = [sys.executable, "-m", "tibackup.cli.main", "apply", "-f", str(path), "--wait",
               "--state-dir", str(env.state)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = "SELECT COUNT(*) FROM information_schema.processlist WHERE state LIKE 'Waiting for table%%'"
    deadline = time.monotonic() + 120  # a bound against hangs, not a timing assertion
    while not target.execute(waiting)[0][0] and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    return proc, locker, names


def _error_line(proc: subprocess.Popen[str]) -> str:
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return line


def test_ctrl_c_of_apply_wait_names_the_rerun_and_the_rerun_resumes(
    renv: Env, target: MariaDBServer, tmp_path: Any
) -> None:
    env = renv
    proc, locker, names = _restore_waiting_on_a_lock(env, target, tmp_path, "stopped")
    proc.send_signal(signal.SIGINT)
    locker.close()
    line = _error_line(proc)
    assert "tibackup rerun rt stopped -n test1" in line and "same command" not in line, line
    stopped = get_json(env, "rt", "stopped")
    assert stopped["status"]["phase"] == "Failed" and condition(stopped)["reason"] == "Interrupted"
    assert condition(stopped)["message"] == line.removeprefix("error: ")
    # What the error says to do works: the rerun ends with exactly the backup's rows.
    rerun = env.tib("rerun", "rt", "stopped", "-n", "test1", "--wait")
    assert rerun.code == 0, rerun
    assert get_json(env, "rt", "stopped")["status"]["phase"] == "Complete"
    assert checksums(target, env.database, names) == checksums(env.mariadb, env.database, names)


def test_delete_of_a_restore_running_under_apply_wait_says_it_was_deleted(
    renv: Env, target: MariaDBServer, tmp_path: Any
) -> None:
    env = renv
    proc, locker, _ = _restore_waiting_on_a_lock(env, target, tmp_path, "doomed")
    try:  # the lock stays held: the load must stop anyway (before, it was SIGKILLed after 30 s)
        deleted = env.tib("delete", "rt", "doomed", "-n", "test1")
    finally:
        locker.close()
    assert deleted.code == 0, deleted
    line = _error_line(proc)
    assert line == 'error: restore "doomed" was deleted while it ran, which stopped it: the rows it loaded ' \
        "stay in the target (deleting a Restore never touches data)", line
    assert env.tib("get", "rt", "doomed", "-n", "test1").code == 1
