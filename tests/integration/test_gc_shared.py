"""Two Backups of one cluster at once share its GC life time (docs/gc-life-time.md), embedded runtime.

One embedded controller runs both Backups (each a child process of its own), against the real MariaDB
with the ``mysql.tidb`` stand-in and the real S3 server. Deterministic: each Backup's S3 endpoint is a
gate (``tests/integration/faults.RequestGate``) that pauses its first dump-file upload — the GC life
time joined, the dump under way — until the test lets it go; the "both at once" case holds the
``tikv_gc_life_time`` row lock until both runs wait on it. On the old code (raise/restore per Backup)
each test sees the value lowered under a running backup, or left raised.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from testenv.s3 import S3Server

from tests.integration.faults import RequestGate
from tests.integration.test_embedded_claim_window import stored
from tests.integration.test_embedded_cli import Env, backup_doc, env_fixture
from tests.integration.test_embedded_controller import controller, gc_stand_in, stop, wait_for
from tibackup.embedded.store import Store
from tibackup.resources import Backup

__all__ = ["env_fixture", "gc_stand_in"]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("gc_stand_in")]

_DUMP_FILE = re.compile(rb"(?:PUT|POST) /\S+\.sql[ ?]")


class Pause:
    """A ``RequestGate`` rule: the first dump-file upload waits, unsent, until ``release``."""

    def __init__(self) -> None:
        self.held, self.go = threading.Event(), threading.Event()
        self._taken = False
        self._lock = threading.Lock()

    def __call__(self, window: bytes) -> bool:
        with self._lock:
            if self._taken or not _DUMP_FILE.search(window):
                return False
            self._taken = True
        self.held.set()
        self.go.wait(300)
        return False  # then it goes through unchanged

    def release(self) -> None:
        self.go.set()


@contextlib.contextmanager
def paused(s3: S3Server) -> Iterator[tuple[RequestGate, Pause]]:
    pause = Pause()
    gate = RequestGate(s3, pause)
    try:
        yield gate, pause
    finally:
        pause.release()
        gate.close()


def apply(env: Env, name: str, gate: RequestGate, target: str, **spec: Any) -> None:
    doc = backup_doc(env, name, tikvGCLifeTime=target, **spec)
    doc["spec"]["s3"]["endpoint"] = gate.endpoint
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0


def gc(env: Env) -> str:
    rows = env.mariadb.execute(
        "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'"
    )
    return str(rows[0][0])


def holder_rows(env: Env) -> list[str]:
    rows = env.mariadb.execute("SELECT VARIABLE_NAME FROM mysql.tidb WHERE VARIABLE_NAME LIKE 'tibackup%'")
    return sorted(str(r[0]) for r in rows)


def wait_phase(env: Env, name: str, phase: str) -> None:
    wait_for(lambda: stored(env, name).status.phase == phase, 120, f"{name} to be {phase}")


def wait_held(pause: Pause, what: str) -> None:
    assert pause.held.wait(120), f"{what} never reached its first dump-file upload"


def end_in_turn(
    env: Env, process: Any, first: tuple[str, Pause], second: tuple[str, Pause], kept: str
) -> None:
    """Let ``first`` end: the value must stay ``kept`` for ``second``; then let ``second`` end."""
    first[1].release()
    wait_phase(env, first[0], "Complete")
    assert gc(env) == kept, f"lowered under the running backup {second[0]}"
    second[1].release()
    wait_phase(env, second[0], "Complete")
    assert stop(process) == 0


def _one_then_the_other(env: Env, tmp_path: Path, target_b: str, after_a: str) -> None:
    """A (72h) joins first, B (``target_b``) joins while A dumps; A ends first: the value must be
    ``after_a`` while B still dumps, and 10m0s once B ended too."""
    with paused(env.s3) as (gate_a, pause_a), paused(env.s3) as (gate_b, pause_b):
        apply(env, "a", gate_a, "72h")
        with controller(env, tmp_path / "controller.log") as process:
            wait_held(pause_a, "a")
            assert gc(env) == "72h"
            apply(env, "b", gate_b, target_b)
            wait_held(pause_b, "b")
            assert gc(env) == max("72h", target_b, key=lambda v: int(v[:-1]))
            pause_a.release()
            wait_phase(env, "a", "Complete")
            assert gc(env) == after_a, "lowered under the running backup b"
            assert len(holder_rows(env)) == 2  # the original and b
            pause_b.release()
            wait_phase(env, "b", "Complete")
            assert stop(process) == 0
    assert gc(env) == "10m0s", "left raised"
    assert holder_rows(env) == []
    assert "GCLifeTimeKept" in env.tib("describe", "bk", "a", "-n", "test1").out
    described_b = env.tib("describe", "bk", "b", "-n", "test1").out
    assert "GCLifeTimeShared" in described_b and "GCLifeTimeRestored" in described_b


def test_shorter_second_target_is_kept_when_the_first_backup_ends_first(env: Env, tmp_path: Path) -> None:
    """A raises 10m0s → 72h; B (48h) sees 72h ≥ 48h; A ends first: B's 48h stays until B ends."""
    _one_then_the_other(env, tmp_path, "48h", "48h")


def test_longer_second_target_is_not_left_raised(env: Env, tmp_path: Path) -> None:
    """A raises 10m0s → 72h; B raises 72h → 100h; A ends, then B: back to 10m0s, not to 72h."""
    _one_then_the_other(env, tmp_path, "100h", "100h")


def _waiting_on_gc_row(env: Env) -> int:
    rows = env.mariadb.execute(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%mysql.tidb%' "
        "AND ID <> CONNECTION_ID()"
    )
    return int(rows[0][0])


def _lock_gc_row(env: Env) -> Any:
    conn = env.mariadb.connect()
    conn.autocommit(False)
    conn.cursor().execute("SELECT * FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time' FOR UPDATE")
    return conn


def test_two_backups_starting_at_once_do_not_lower_it_under_each_other(env: Env, tmp_path: Path) -> None:
    """Both reach the GC life time together (held on its row lock, then let go at once): the one that
    ends first must not lower it under the other."""
    with paused(env.s3) as (gate_a, pause_a), paused(env.s3) as (gate_b, pause_b):
        apply(env, "a", gate_a, "72h")
        apply(env, "b", gate_b, "48h")
        lock = _lock_gc_row(env)
        try:
            with controller(env, tmp_path / "controller.log") as process:
                wait_for(lambda: _waiting_on_gc_row(env) >= 2, 120, "both runs to wait on the GC row")
                lock.rollback()
                wait_held(pause_a, "a")
                wait_held(pause_b, "b")
                assert gc(env) == "72h"
                end_in_turn(env, process, ("a", pause_a), ("b", pause_b), "48h")
        finally:
            lock.close()
    assert gc(env) == "10m0s" and holder_rows(env) == []


def test_holder_killed_then_recovered_leaves_without_lowering_it_under_the_other(
    env: Env, tmp_path: Path
) -> None:
    """kill -9 of A's run while both dump: the controller's recovery makes A leave (48h for B stays);
    B's end restores 10m0s."""
    with paused(env.s3) as (gate_a, pause_a), paused(env.s3) as (gate_b, pause_b):
        apply(env, "a", gate_a, "72h")
        with controller(env, tmp_path / "controller.log") as process:
            wait_held(pause_a, "a")
            apply(env, "b", gate_b, "48h")
            wait_held(pause_b, "b")
            store = Store(env.state)
            try:
                (run_a,) = [r for r in store.runs() if r.name == "a"]
            finally:
                store.close()
            os.kill(run_a.pid, signal.SIGKILL)  # no finally runs in A: its holder row stays
            wait_phase(env, "a", "Failed")
            assert stored(env, "a").status.condition("Failed").reason == "Interrupted"  # type: ignore[union-attr]
            assert gc(env) == "48h", "recovery lowered it under the running backup b"
            assert len(holder_rows(env)) == 2  # the original and b
            pause_b.release()
            wait_phase(env, "b", "Complete")
            assert stop(process) == 0
    assert gc(env) == "10m0s" and holder_rows(env) == []
    assert "GCLifeTimeKept" in env.tib("describe", "bk", "a", "-n", "test1").out


def _run_alone(env: Env, tmp_path: Path, name: str, target: str, **spec: Any) -> Backup:
    doc = backup_doc(env, name, tikvGCLifeTime=target, **spec)
    assert env.tib("apply", "-f", "-", stdin=yaml.safe_dump(doc)).code == 0
    with controller(env, tmp_path / f"{name}.log") as process:
        wait_for(lambda: stored(env, name).status.phase in ("Complete", "Failed"), 120, f"{name} to end")
        assert stop(process) == 0
    return stored(env, name)


def _foreign_holder(env: Env, uid: str, target: str, since: str) -> None:
    value = f'{{"target":"{target}","since":"{since}","backup":"other/gone","host":"elsewhere"}}'
    env.mariadb.execute(
        f"INSERT INTO mysql.tidb VALUES ('tibackup_gc_original', '10m0s', ''), "
        f"('tibackup_gc_holder_{uid}', '{value}', '')"
    )


def test_holder_that_vanished_keeps_it_raised_until_its_target_has_passed(env: Env, tmp_path: Path) -> None:
    """A holder row whose backup is gone (never left): while it may still protect a snapshot the value
    stays raised for it — "raised longer", never "lowered"; once its since + target (+ margin) lies
    behind the server's clock, the next backup drops it, says so, and restores the original."""
    env.mariadb.execute(
        "UPDATE mysql.tidb SET VARIABLE_VALUE = '100h' WHERE VARIABLE_NAME = 'tikv_gc_life_time'"
    )
    now = str(env.mariadb.execute("SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%dT%H:%i:%sZ')")[0][0])
    _foreign_holder(env, "recent", "100h", now)
    done = _run_alone(env, tmp_path, "a", "72h")
    assert done.status.phase == "Complete"
    assert gc(env) == "100h" and holder_rows(env) == ["tibackup_gc_holder_recent", "tibackup_gc_original"]
    described = env.tib("describe", "bk", "a", "-n", "test1").out
    assert "GCLifeTimeShared" in described and "other/gone" in described and "GCLifeTimeKept" in described

    env.mariadb.execute("DELETE FROM mysql.tidb WHERE VARIABLE_NAME LIKE 'tibackup%'")
    _foreign_holder(env, "stale", "72h", "2020-01-01T00:00:00Z")
    done = _run_alone(env, tmp_path, "b", "48h")
    assert done.status.phase == "Complete"
    assert gc(env) == "10m0s" and holder_rows(env) == []
    described = env.tib("describe", "bk", "b", "-n", "test1").out
    assert "GCLifeTimeHolderExpired" in described and "other/gone" in described


def _old_grants_source(env: Env) -> dict[str, Any]:
    """An account with the privileges SPEC §3 lists: SELECT and UPDATE on mysql.tidb, no INSERT, DELETE."""
    env.mariadb.create_user(
        "bk_gc_old", "old-grants-123",
        ["SELECT, RELOAD, LOCK TABLES, REPLICATION CLIENT, SHOW VIEW", "SELECT, UPDATE ON mysql.tidb"],
    )  # fmt: skip
    created = env.tib(
        "create", "secret", "generic", "bk-gc-old", "-n", "test1", "--from-literal=password=old-grants-123"
    )
    assert created.code == 0
    return {
        "host": env.mariadb.host,
        "port": env.mariadb.port,
        "user": "bk_gc_old",
        "secretName": "bk-gc-old",
    }


def test_account_with_only_select_and_update_on_mysql_tidb_backs_up_raising_it_alone(
    env: Env, tmp_path: Path
) -> None:
    """The privileges SPEC lists are enough: the backup raises and sets back the value on its own, as
    before sharing, and says once why and what to grant."""
    done = _run_alone(env, tmp_path, "old", "72h", **{"from": _old_grants_source(env)})
    assert done.status.phase == "Complete", done.status
    assert gc(env) == "10m0s" and holder_rows(env) == []
    described = env.tib("describe", "bk", "old", "-n", "test1").out
    assert described.count("GCLifeTimeNotShared") == 1, described
    assert "GRANT INSERT, DELETE ON mysql.tidb TO 'bk_gc_old'@'%'" in described
    assert "raised from 10m0s to 72h" in described and "restored to 10m0s" in described


def test_lone_backup_and_a_sharing_one_do_not_lower_it_under_each_other(env: Env, tmp_path: Path) -> None:
    """A shares (48h); L, without INSERT, DELETE, raises 48h → 72h on its own and makes 72h the
    sharers' original; A ends first: 72h stays under L; L ends: 10m0s. Then the other way round: L
    raises 10m0s → 72h, A joins and takes 72h as its original; L ends first: A's 48h; A ends:
    10m0s, not left raised at 72h."""
    source = {"from": _old_grants_source(env)}
    with paused(env.s3) as (gate_a, pause_a), paused(env.s3) as (gate_l, pause_l):
        apply(env, "a", gate_a, "48h")
        with controller(env, tmp_path / "controller.log", "--metrics-port", "0") as process:
            wait_held(pause_a, "a")
            apply(env, "l", gate_l, "72h", **source)
            wait_held(pause_l, "l")
            assert gc(env) == "72h"
            end_in_turn(env, process, ("a", pause_a), ("l", pause_l), "72h")
    assert gc(env) == "10m0s" and holder_rows(env) == []
    lone = env.tib("describe", "bk", "l", "-n", "test1").out
    assert "GCLifeTimeSharedByOthers" in lone and "holds no row" in lone and "test1/a" in lone, lone
    assert "is also held by" not in lone, "a lone backup claimed to share the value"

    with paused(env.s3) as (gate_a, pause_a), paused(env.s3) as (gate_l, pause_l):
        apply(env, "l2", gate_l, "72h", **source)
        with controller(env, tmp_path / "controller2.log", "--metrics-port", "0") as process:
            wait_held(pause_l, "l2")
            assert gc(env) == "72h"
            apply(env, "a2", gate_a, "48h")
            wait_held(pause_a, "a2")
            end_in_turn(env, process, ("l2", pause_l), ("a2", pause_a), "48h")
    assert gc(env) == "10m0s", "left raised"
    assert holder_rows(env) == []


def _role_source(env: Env, user: str, role: str, on_gc_table: str) -> dict[str, Any]:
    """An account whose privileges on mysql.tidb come from a default role (``SHOW GRANTS`` names the
    role, not what it grants): ``on_gc_table`` is granted to the role."""
    env.mariadb.execute(f"DROP ROLE IF EXISTS {role}")
    env.mariadb.create_user(
        user, "role-grants-123", ["SELECT, RELOAD, LOCK TABLES, REPLICATION CLIENT, SHOW VIEW"]
    )
    for statement in (
        # granted to the user (with admin) instead of root, whom MariaDB would grant it to as its creator
        f"CREATE ROLE {role} WITH ADMIN '{user}'@'%'",
        f"GRANT {on_gc_table} ON mysql.tidb TO {role}",
        f"SET DEFAULT ROLE {role} FOR '{user}'@'%'",
    ):
        env.mariadb.execute(statement)
    secret = user.replace("_", "-")
    created = env.tib(
        "create", "secret", "generic", secret, "-n", "test1", "--from-literal=password=role-grants-123"
    )
    assert created.code == 0
    return {"host": env.mariadb.host, "port": env.mariadb.port, "user": user, "secretName": secret}


def test_role_that_may_insert_but_not_delete_raises_it_alone_and_sets_it_back(
    env: Env, tmp_path: Path
) -> None:
    """A role with SELECT, UPDATE, INSERT but no DELETE on mysql.tidb: joining would add a holder row
    the backup cannot remove, leaving the value raised until the row expires. The join proves first
    that it can remove its row; refused, the backup raises the value on its own and sets it back."""
    source = _role_source(env, "bk_gc_role", "gc_no_delete", "SELECT, UPDATE, INSERT")
    done = _run_alone(env, tmp_path, "norole", "72h", **{"from": source})
    assert done.status.phase == "Complete", done.status
    assert done.status.condition("GCLifeTimeRestorePending") is None, done.status
    assert gc(env) == "10m0s", "left raised"
    assert holder_rows(env) == []
    described = env.tib("describe", "bk", "norole", "-n", "test1").out
    assert described.count("GCLifeTimeNotShared") == 1, described
    assert "lacks DELETE ON mysql.tidb" in described, described
    assert "GRANT INSERT, DELETE ON mysql.tidb TO 'bk_gc_role'@'%'" in described, described
    assert "raised from 10m0s to 72h" in described and "restored to 10m0s" in described


def test_role_with_all_four_privileges_shares_it(env: Env, tmp_path: Path) -> None:
    """A role with SELECT, UPDATE, INSERT, DELETE on mysql.tidb shares: its holder row is there while
    it dumps, and gone (with the value set back) once it ended."""
    source = _role_source(env, "bk_gc_role4", "gc_all_four", "SELECT, UPDATE, INSERT, DELETE")
    with paused(env.s3) as (gate, pause):
        apply(env, "role4", gate, "72h", **{"from": source})
        with controller(env, tmp_path / "controller.log") as process:
            wait_held(pause, "role4")
            assert gc(env) == "72h"
            rows = holder_rows(env)
            assert len(rows) == 2 and "tibackup_gc_original" in rows, rows
            pause.release()
            wait_phase(env, "role4", "Complete")
            assert stop(process) == 0
    assert gc(env) == "10m0s" and holder_rows(env) == []
    described = env.tib("describe", "bk", "role4", "-n", "test1").out
    assert "GCLifeTimeNotShared" not in described, described
