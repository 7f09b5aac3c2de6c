"""The operator on the API emulator: two backup Jobs of one cluster at once share its GC life time.

Each Backup's S3 endpoint is a gate that pauses its first dump-file upload (tests/integration/
test_gc_shared.py), so both Jobs are certainly in their dumps with the GC life time joined; A (72h) is
let go first and ends while B (48h) still dumps. On the old code A's end restored 10m0s under B.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.faults import apply_wait_process
from tests.integration.test_embedded_cli import tib
from tests.integration.test_gc_shared import paused
from tests.operator.conftest import Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import DB_SECRET, S3_SECRET, backup_body, fill, phase_of, secrets
from tibackup.operator.kube import BACKUPS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]


@pytest.fixture()
def gc_table(mariadb: Any) -> Iterator[None]:
    mariadb.execute(
        "CREATE OR REPLACE TABLE mysql.tidb (VARIABLE_NAME varchar(64) PRIMARY KEY, "
        "VARIABLE_VALUE varchar(1024), COMMENT varchar(1024))"
    )
    mariadb.execute("INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s', 'stand-in')")
    try:
        yield
    finally:
        mariadb.execute("DROP TABLE IF EXISTS mysql.tidb")


def _gc(mariadb: Any) -> str:
    return str(
        mariadb.execute("SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'")[0][
            0
        ]
    )


def _held(pause: Any) -> bool:
    return bool(pause.held.is_set())


async def test_two_jobs_do_not_lower_the_gc_life_time_under_each_other(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str, gc_table: None
) -> None:
    fill(mariadb, fresh_db, 10)
    await secrets(cluster, mariadb, s3_server)
    with paused(s3_server) as (gate_a, pause_a), paused(s3_server) as (gate_b, pause_b):
        for name, gate, target in (("a", gate_a, "72h"), ("b", gate_b, "48h")):
            body = backup_body(name, mariadb, s3_server, bucket, fresh_db, tikvGCLifeTime=target)
            body["spec"]["s3"]["endpoint"] = gate.endpoint
            del body["spec"]["storageSize"]  # direct: no staging volume to emulate
            await cluster.kube.create(BACKUPS, "test1", body)
            await wait_for(lambda p=pause_a if name == "a" else pause_b: _held(p), 90, f"{name}'s dump")
        assert _gc(mariadb) == "72h"
        pause_a.release()
        await wait_for(lambda: phase_of(cluster, "a", "Complete"), 90, "a to complete")
        assert _gc(mariadb) == "48h", "lowered under the running Job b"
        pause_b.release()
        await wait_for(lambda: phase_of(cluster, "b", "Complete"), 90, "b to complete")
    assert _gc(mariadb) == "10m0s"
    assert mariadb.execute("SELECT COUNT(*) FROM mysql.tidb WHERE VARIABLE_NAME LIKE 'tibackup%'")[0][0] == 0


async def test_an_operator_job_and_an_embedded_backup_at_once_share_it(
    cluster: Cluster, mariadb: Any, s3_server: Any, bucket: str, fresh_db: str, gc_table: None, tmp_path: Path
) -> None:
    """A in an operator Job (72h), B in an embedded ``tibackup apply --wait`` on another machine's state
    (48h): they know nothing of each other but the database; A ends first and B keeps its 48h."""
    fill(mariadb, fresh_db, 10)
    await secrets(cluster, mariadb, s3_server)
    state = tmp_path / "embedded-state"
    for name, *literals in (
        (DB_SECRET, f"password={mariadb.password}"),
        (S3_SECRET, f"access_key={s3_server.access_key}", f"secret_key={s3_server.secret_key}"),
    ):
        flags = [f"--from-literal={literal}" for literal in literals]
        made = tib("create", "secret", "generic", name, "-n", "test1", *flags, "--state-dir", str(state))
        assert made.code == 0, made
    with paused(s3_server) as (gate_a, pause_a), paused(s3_server) as (gate_b, pause_b):
        body = backup_body("a", mariadb, s3_server, bucket, fresh_db, tikvGCLifeTime="72h")
        body["spec"]["s3"]["endpoint"] = gate_a.endpoint
        del body["spec"]["storageSize"]
        await cluster.kube.create(BACKUPS, "test1", body)
        await wait_for(lambda: _held(pause_a), 90, "a's dump")
        doc = backup_body("b", mariadb, s3_server, bucket, fresh_db, tikvGCLifeTime="48h")
        doc["spec"]["s3"]["endpoint"] = gate_b.endpoint
        del doc["spec"]["storageSize"]
        embedded = apply_wait_process(state, doc)
        try:
            await wait_for(lambda: _held(pause_b), 90, "b's dump")
            assert _gc(mariadb) == "72h"
            pause_a.release()
            await wait_for(lambda: phase_of(cluster, "a", "Complete"), 90, "a to complete")
            assert _gc(mariadb) == "48h", "the operator's Job lowered it under the embedded backup"
            pause_b.release()
            _, stderr = await asyncio.to_thread(embedded.communicate, timeout=120)
            assert embedded.returncode == 0, stderr
        finally:
            if embedded.poll() is None:
                embedded.kill()
                embedded.wait()
    assert _gc(mariadb) == "10m0s"
