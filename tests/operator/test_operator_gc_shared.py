"""The operator on the API emulator: two backup Jobs of one cluster at once share its GC life time.

Each Backup's S3 endpoint is a gate that pauses its first dump-file upload (tests/integration/
test_gc_shared.py), so both Jobs are certainly in their dumps with the GC life time joined; A (72h) is
let go first and ends while B (48h) still dumps. On the old code A's end restored 10m0s under B.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_gc_shared import paused
from tests.operator.conftest import Cluster
from tests.operator.harness import wait_for
from tests.operator.test_operator_e2e import backup_body, fill, phase_of, secrets
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
