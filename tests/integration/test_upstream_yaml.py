"""TiDB Operator v1.6 YAML in the embedded runtime: applied as written, backed up to the place s3.path
names, each ignored field printed as a warning and recorded as an event that describe shows."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.test_embedded_cli import DB_PASSWORD_SECRET, S3_SECRET, Env, env_fixture, get_json
from tests.upstream_examples import (
    IGNORED_IN_BACKUP,
    IGNORED_IN_SCHEDULE,
    upstream_backup,
    upstream_backup_spec,
    upstream_schedule,
)

pytestmark = pytest.mark.integration
__all__ = ["env_fixture"]


def _spec(env: Env) -> dict[str, object]:
    return upstream_backup_spec(
        env.mariadb.host, env.mariadb.port, DB_PASSWORD_SECRET, env.s3.endpoint, env.bucket, S3_SECRET,
        env.database,
    )  # fmt: skip


def test_upstream_backup_applies_runs_and_warns(env: Env) -> None:
    text = yaml.safe_dump(upstream_backup("v16", "test1", _spec(env)))
    result = env.tib("apply", "-f", "-", "--wait", stdin=text)
    assert result.code == 0, result
    warnings = [line for line in result.err.splitlines() if line.startswith("Warning: ")]
    assert sorted(w.split()[1] for w in warnings) == sorted(f"spec.{f}" for f in IGNORED_IN_BACKUP)
    status = get_json(env, "bk", "v16")["status"]
    assert status["phase"] == "Complete"
    assert status["backupPath"].startswith(f"s3://{env.bucket}/upstream/v16/backup-")
    described = env.tib("describe", "bk", "v16", "-n", "test1")
    assert described.code == 0
    assert "IgnoredField" in described.out and "spec.calcSizeLevel is ignored" in described.out


def test_upstream_schedule_applies_and_warns(env: Env) -> None:
    text = yaml.safe_dump(upstream_schedule("nightly", "test1", _spec(env)))
    result = env.tib("apply", "-f", "-", stdin=text)
    assert result.code == 0 and "backupschedule.pingcap.com/nightly created" in result.out, result
    for field in IGNORED_IN_SCHEDULE:
        assert f"Warning: spec.{field} is ignored: log backups are BR's" in result.err
    assert "Warning: spec.backupTemplate.backoffRetryPolicy is ignored" in result.err
    stored = get_json(env, "bks", "nightly")["spec"]
    assert stored["s3"]["path"] == f"s3://{env.bucket}/upstream/v16"
    assert stored["logBackupTemplate"]["backupMode"] == "log"
