"""Hostile input end to end on the real MariaDB and S3 servers: a copy of a Complete Backup's YAML never
takes its data, an empty password backs up, the controller masks only the Secrets a Backup names, and a
full disk under the state directory is one clear line while get/describe keep working."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.mounts import small_tmpfs
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture, get_json, keys_under
from tests.integration.test_embedded_controller import controller, wait_for

__all__ = ["env_fixture"]  # the `env` fixture, shared with the CLI tests

pytestmark = pytest.mark.integration


def test_a_copy_of_a_complete_backups_yaml_runs_on_its_own_and_never_takes_its_data(env: Env) -> None:
    assert env.tib("apply", "-f", "-", "--wait", stdin=env.backup_yaml("orig")).code == 0
    original = get_json(env, "bk", "orig")
    assert original["status"]["phase"] == "Complete"
    kept = keys_under(env, original["status"]["backupPath"])
    assert kept
    copy = json.loads(json.dumps(original))  # `get bk -o yaml`, renamed, as a user would reuse it
    copy["metadata"]["name"] = "copy"
    copy["spec"]["cleanPolicy"] = "Delete"
    applied = env.tib("apply", "-f", "-", stdin=yaml.safe_dump(copy))
    assert applied.code == 0, applied
    stored = get_json(env, "bk", "copy")
    assert not stored.get("status"), stored  # not Complete, no backupPath: it has not run
    assert stored["metadata"]["uid"] != original["metadata"]["uid"]
    deleted = env.tib("delete", "bk", "copy", "-n", "test1")
    assert deleted.code == 0, deleted
    assert keys_under(env, original["status"]["backupPath"]) == kept


def test_an_empty_password_is_a_password(env: Env) -> None:
    user = f"nopw_{uuid.uuid4().hex[:8]}"
    env.mariadb.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY ''")
    try:
        env.mariadb.execute(
            f"GRANT SELECT, RELOAD, LOCK TABLES, BINLOG MONITOR, SHOW VIEW ON *.* TO '{user}'@'%'"
        )
        created = env.tib(
            "create", "secret", "generic", "empty-pw", "-n", "test1", "--from-literal=password="
        )
        assert created.code == 0, created
        doc = backup_doc(env, "nopw")
        doc["spec"]["from"].update(user=user, secretName="empty-pw")
        ran = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
        assert ran.code == 0, ran
        status = get_json(env, "bk", "nopw")["status"]
        assert status["phase"] == "Complete" and keys_under(env, status["backupPath"])
        # A Secret without the key is still an error, and says so.
        assert (
            env.tib("create", "secret", "generic", "no-key", "-n", "test1", "--from-literal=pass=").code == 0
        )
        doc = backup_doc(env, "nokey")
        doc["spec"]["from"].update(user=user, secretName="no-key")
        failed = env.tib("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(doc))
        assert failed.code == 1
        condition = get_json(env, "bk", "nokey")["status"]["conditions"][-1]
        assert condition["reason"] == "SecretKeyMissing"
        assert "has no key 'password'" in condition["message"] and "'pass'" in condition["message"]
    finally:
        env.mariadb.execute(f"DROP USER '{user}'@'%'")


def test_controller_masks_only_the_secrets_the_backup_names(env: Env, tmp_path: Path) -> None:
    # Another Secret holds "wrong", which appears in the Backup's name: it must not be masked there.
    other = env.tib("create", "secret", "generic", "other", "-n", "test1", "--from-literal=password=wrong")
    assert other.code == 0
    password = env.mariadb.password
    assert len(password) >= 4 and password.isidentifier()
    # The referenced password reaches a log line: the server echoes the unknown column named after it.
    doc = backup_doc(env, "wrongpw-bk")
    doc["spec"]["dumpling"]["options"] = ["--threads=2", f"--where={password} > 0"]
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0
    log = tmp_path / "controller.log"
    with controller(env, log, "--metrics-port", "0"):
        wait_for(
            lambda: (get_json(env, "bk", "wrongpw-bk").get("status") or {}).get("phase") == "Failed",
            120,
            "the backup to fail",
        )
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.startswith("[test1/wrongpw-bk]")]
    assert lines, text
    assert any("wrongpw-bk" in line.split("]", 1)[1] for line in lines), lines
    assert "******pw" not in text and password not in text
    assert any("Unknown column '***" in line for line in lines), lines  # masked (by the run or the relay)


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "tiny", "256k") as mount:  # room for the state database, little more
        yield mount


def _fill(disk: Path) -> None:
    with open(disk / "filler", "wb", buffering=0) as out:
        try:
            while out.write(b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full


def _tib(state: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tibackup.cli.main", *args, "--state-dir", str(state)],
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("held_open", [False, True])
def test_a_full_state_disk_is_one_line_and_reading_still_works(
    env: Env, tiny_disk: Path, held_open: bool
) -> None:
    state = tiny_disk / "state"
    first = _tib(state, "apply", "-f", "-", stdin=env.backup_yaml("before-full"))
    assert first.returncode == 0, first
    holder = None
    if held_open:  # a running controller keeps the database (and its WAL index) open
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
             "c.execute('SELECT 1 FROM resources').fetchall(); sys.stdin.read()", str(state / "state.db")],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        wait_for(lambda: (state / "state.db-shm").exists(), 20, "the WAL index")
    try:
        _fill(tiny_disk)
        for args in (("apply", "-f", "-"), ("create", "secret", "generic", "s", "--from-literal=a=b")):
            refused = _tib(state, *args, "-n", "test1", stdin=env.backup_yaml("after-full"))
            assert refused.returncode == 1, refused
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: the disk of the state directory"), lines
            assert str(state) in lines[0] and "is full" in lines[0] and "free space" in lines[0]
            assert "internal error" not in refused.stderr and "Traceback" not in refused.stderr
        listed = _tib(state, "get", "bk", "-n", "test1")
        assert listed.returncode == 0, listed
        assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["before-full"]
        described = _tib(state, "describe", "bk", "before-full", "-n", "test1")
        assert described.returncode == 0 and "before-full" in described.stdout, described
        (tiny_disk / "filler").unlink()
        again = _tib(state, "apply", "-f", "-", stdin=env.backup_yaml("after-full"))
        assert again.returncode == 0, again
        names = [
            i["metadata"]["name"]
            for i in json.loads(_tib(state, "get", "bk", "-n", "test1", "-o", "json").stdout)["items"]
        ]
        assert names == ["after-full", "before-full"]
    finally:
        if holder is not None:
            holder.communicate(b"")
