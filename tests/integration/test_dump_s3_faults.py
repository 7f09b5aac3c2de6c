"""``tibackup dump`` to an S3 server that dies or freezes mid-upload: one line naming S3, exit 4, and no
multipart upload left once S3 is back and the next dump to that endpoint ran (the upload journal)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import SeaweedFSServer

from tests.integration.faults import (
    PartGate,
    dedicated_s3,
    dump_process,
    error_lines,
    kill_s3,
    load_big_table,
    restart_s3,
    s3_env,
    uploads,
)

pytestmark = pytest.mark.integration


def gated_args(s3: SeaweedFSServer, gate: PartGate) -> list[str]:
    """The dump's S3 flags with the endpoint behind the gate (watching S3 for an upload was a race)."""
    return ["--s3.endpoint", gate.endpoint, "--s3.provider", "other", "--s3.region", s3.region]


@pytest.fixture()
def big_db(mariadb: MariaDBServer, fresh_db: str) -> str:
    return load_big_table(mariadb, fresh_db)


def test_s3_killed_mid_dump_then_next_dump_aborts_the_orphans(
    mariadb: MariaDBServer, big_db: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    with dedicated_s3(tmp_path) as s3, contextlib.closing(PartGate(s3)) as gate:
        env = s3_env(s3, journal)
        through_gate = gated_args(s3, gate)
        proc = dump_process(mariadb, big_db, "s3://faults/one", "-t", "1", *through_gate, env=env)
        gate.wait_held(60)  # an upload is open on S3 and cannot complete (see PartGate)
        kill_s3(s3)
        gate.drop_held()
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 4, stderr
        assert "Traceback" not in stderr
        (line,) = error_lines(stderr)
        assert "S3" in line and "database" not in line.lower(), line
        assert "could not be aborted" in line and str(journal) in line, line
        recorded = [json.loads(p.read_text()) for p in journal.glob("*.json")]
        assert recorded and all(r["endpoint"] == gate.endpoint for r in recorded)

        restart_s3(s3)  # same port, same data: the orphans are still there
        assert {u["UploadId"] for u in uploads(s3)} >= {r["upload_id"] for r in recorded}
        again = dump_process(
            mariadb, big_db, "s3://faults/two", "-t", "1", "-T", f"{big_db}.sbtest1", "--where", "id < 10",
            *through_gate, env=env,
        )  # fmt: skip
        stdout, stderr = again.communicate(timeout=120)
        assert again.returncode == 0, stderr
        log = stdout + stderr  # Dumpling writes its log to standard output
        assert "aborted" in log and "left by an earlier run" in log, log
        assert uploads(s3) == []
        assert list(journal.glob("*.json")) == []


def test_frozen_s3_is_named_not_the_database_and_its_uploads_are_aborted_later(tmp_path: Path) -> None:
    """SIGSTOP: the server accepts connections and never answers. The database session times out
    first (net_write_timeout=1 while the worker waits for the stalled parts): still an S3 error."""
    journal = tmp_path / "journal"
    with (
        MariaDBServer(tmp_path / "db", extra_args=["--net-write-timeout=1"]) as db,
        dedicated_s3(tmp_path) as s3,
        contextlib.closing(PartGate(s3)) as gate,
    ):
        load_big_table(db, "frozen")
        env = s3_env(s3, journal)
        timeouts = ["--s3.timeout", "3s", "--s3.connect-timeout", "2s", "--s3.max-attempts", "2"]
        proc = dump_process(db, "frozen", "s3://faults/frozen", "-t", "1", *timeouts, *gated_args(s3, gate), env=env)
        gate.wait_held(60)  # the held part stays unanswered, as the frozen server leaves the others
        assert s3.pid is not None
        os.kill(s3.pid, signal.SIGSTOP)
        try:
            _, stderr = proc.communicate(timeout=180)
        finally:
            os.kill(s3.pid, signal.SIGCONT)
        assert proc.returncode == 4, stderr
        assert "Traceback" not in stderr
        (line,) = error_lines(stderr)
        assert "S3 endpoint" in line and "database" not in line.lower(), line
        again = dump_process(
            db, "frozen", "s3://faults/after", "-t", "1", "-T", "frozen.sbtest1", "--where", "id < 10",
            *gated_args(s3, gate), env=env,
        )  # fmt: skip
        _, stderr = again.communicate(timeout=120)
        assert again.returncode == 0, stderr
        assert uploads(s3) == []
        assert list(journal.glob("*.json")) == []
