"""The Job's runtime reads Secrets only from what the kubelet gave it (no API access to Secrets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from tibackup.control.naming import backup_from_schedule
from tibackup.errors import NotFoundError
from tibackup.operator import jobs
from tibackup.operator.kube import KubeApi
from tibackup.operator.runtime import KubernetesRuntime
from tibackup.resources import BackupSchedule, parse_resource

NAMES = {
    jobs.ENV_DB_PASSWORD: ["db-secret", "password"],
    jobs.ENV_S3_ACCESS_KEY: ["s3-secret", "access_key"],
    jobs.ENV_S3_SECRET_KEY: ["s3-secret", "secret_key"],
}


class NoApi:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the Job must not call the API for Secrets ({name})")


def runtime(**env: str) -> KubernetesRuntime:
    return KubernetesRuntime(cast(KubeApi, NoApi()), {jobs.ENV_SECRET_NAMES: json.dumps(NAMES), **env})


def test_secret_keys_come_from_the_environment_only() -> None:
    given = runtime(
        **{jobs.ENV_S3_ACCESS_KEY: "AK", jobs.ENV_S3_SECRET_KEY: "SK", jobs.ENV_DB_PASSWORD: "pw"}
    )
    assert given.get_secret("test1", "s3-secret") == {"access_key": "AK", "secret_key": "SK"}
    # A missing key comes back missing: the manager names it (SecretKeyMissing).
    assert runtime(**{jobs.ENV_S3_ACCESS_KEY: "AK"}).get_secret("test1", "s3-secret") == {"access_key": "AK"}


def test_a_secret_the_job_did_not_get_is_secret_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        runtime().get_secret("test1", "db-secret")
    assert caught.value.reason == "SecretNotFound"
    assert "Secret test1/db-secret not found" in caught.value.message


def test_a_schedule_in_tibackups_group_makes_backups_in_it_without_operator_annotations() -> None:
    body = {
        "apiVersion": "backup.tibackup.io/v1alpha1", "kind": "BackupSchedule",
        "metadata": {"name": "nightly", "namespace": "test1", "uid": "u", "annotations": {
            "iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user",
            "operator.tibackup.pingcap.com/last-handled-configuration": "{}",
            "kopf.zalando.org/last-handled-configuration": "{}"}},
        "spec": {"schedule": "@daily", "backupTemplate": {
            "from": {"host": "db", "secretName": "db-secret"}, "s3": {"provider": "ceph", "bucket": "b"}}},
    }  # fmt: skip
    schedule = parse_resource(body)
    assert isinstance(schedule, BackupSchedule)
    backup = backup_from_schedule(schedule, datetime(2026, 1, 1, tzinfo=UTC))
    assert backup.api_version == "backup.tibackup.io/v1alpha1"
    # The operator's bookkeeping never travels: a copied diffbase would make kopf skip the new Backup.
    assert backup.metadata.annotations == {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"}
    [owner] = backup.metadata.owner_references or []
    assert owner.api_version == "backup.tibackup.io/v1alpha1"
    job = jobs.job_manifest(backup, "tibackup:1")
    assert {"name": "TIBACKUP_API_GROUP", "value": "backup.tibackup.io"} in job["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
