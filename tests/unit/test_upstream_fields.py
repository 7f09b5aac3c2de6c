"""Every field of TiDB Operator v1.6's Backup / BackupSchedule applies: the ones with a meaning here
take effect (s3.path, any-case provider, schedule-level s3), the others are named in a warning; fields
of other engines and fields upstream does not have stay refused."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.upstream_examples import (
    APPLIED_BY_OPERATOR,
    IGNORED_IN_BACKUP,
    IGNORED_IN_SCHEDULE,
    upstream_backup,
    upstream_backup_spec,
    upstream_schedule,
)
from tibackup.errors import InvalidSpecError
from tibackup.manager.admission import admit
from tibackup.resources import Backup, BackupSchedule, load_resources, parse_resource
from tibackup.resources.upstream import ignored_fields

SPEC = upstream_backup_spec("127.0.0.1", 4000, "db", "http://127.0.0.1:8333", "bkt", "s3", "shop")


def _backup(**changes: object) -> Backup:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    resource = parse_resource(upstream_backup("b1", "test1", spec))
    assert isinstance(resource, Backup)
    return resource


def test_upstream_backup_applies_and_names_every_ignored_field() -> None:
    backup = _backup()
    admit(backup)  # the run's own checks pass: it can run
    assert backup.spec.s3 is not None
    assert (backup.spec.s3.provider, backup.spec.s3.bucket, backup.spec.s3.prefix) == (
        "ceph",
        "bkt",
        "upstream/v16",
    )
    warnings = ignored_fields(backup)
    assert sorted(w.split(" ", 1)[0] for w in warnings) == [f"spec.{f}" for f in sorted(IGNORED_IN_BACKUP)]
    assert all(" is ignored: " in w for w in warnings)


def test_upstream_schedule_takes_its_s3_and_warns_about_log_backups() -> None:
    [schedule] = load_resources(yaml.safe_dump(upstream_schedule("nightly", "test1", SPEC)))
    assert isinstance(schedule, BackupSchedule)
    admit(schedule)
    s3 = schedule.spec.backup_template.s3
    assert s3 is not None and (s3.bucket, s3.prefix) == ("bkt", "upstream/v16")
    warned = {w.split(" ", 1)[0] for w in ignored_fields(schedule)}
    assert {f"spec.{f}" for f in IGNORED_IN_SCHEDULE} <= warned
    assert {f"spec.backupTemplate.{f}" for f in IGNORED_IN_BACKUP} <= warned


@pytest.mark.parametrize(
    ("s3", "bucket", "prefix"),
    [
        ({"path": "s3://bkt/a/b"}, "bkt", "a/b"),
        ({"path": "bkt/a/b/"}, "bkt", "a/b"),
        ({"path": "s3://bkt"}, "bkt", None),
        ({"path": "s3://bkt/a", "bucket": "bkt"}, "bkt", "a"),
        ({"path": "s3://bkt/a", "bucket": "bkt", "prefix": "/a/"}, "bkt", "/a/"),
        ({"path": "s3://bkt", "prefix": "p"}, "bkt", "p"),
    ],
)
def test_s3_path_gives_bucket_and_prefix(s3: dict[str, str], bucket: str, prefix: str | None) -> None:
    backup = _backup(s3={"provider": "aws", **s3})
    assert backup.spec.s3 is not None and (backup.spec.s3.bucket, backup.spec.s3.prefix) == (bucket, prefix)


@pytest.mark.parametrize(
    ("s3", "message"),
    [
        ({"path": "s3://bkt/a", "bucket": "other"}, "s3.path names bucket 'bkt' but s3.bucket is 'other'"),
        ({"path": "s3://bkt/a", "prefix": "b"}, "s3.path names prefix 'a' but s3.prefix is 'b'"),
    ],
)
def test_s3_path_that_disagrees_is_refused(s3: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidSpecError) as info:
        _backup(s3={"provider": "aws", **s3})
    assert info.value.field == "spec.s3" and message in info.value.message


@pytest.mark.parametrize(
    "provider", ["AWS", "Aws", "CEPH", "Minio", "SeaweedFS", "Cloudflare", "IDrive", "Other"]
)
def test_provider_takes_any_case(provider: str) -> None:
    backup = _backup(s3={"provider": provider, "bucket": "bkt", "endpoint": "http://127.0.0.1:1"})
    assert backup.spec.s3 is not None and backup.spec.s3.provider == provider.lower()
    admit(backup)
    assert not [w for w in ignored_fields(backup) if "provider" in w]


def test_unknown_provider_is_generic_s3_needing_an_endpoint() -> None:
    with_endpoint = _backup(s3={"provider": "MyStore", "bucket": "bkt", "endpoint": "http://127.0.0.1:1"})
    admit(with_endpoint)
    assert any("'mystore' is not a provider tibackup knows" in w for w in ignored_fields(with_endpoint))
    with pytest.raises(InvalidSpecError, match=r"endpoint: required for provider mystore"):
        admit(_backup(s3={"provider": "MyStore", "bucket": "bkt"}))


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"br": {"cluster": "basic"}}, "spec.br", "Dumpling-compatible"),
        ({"gcs": {"projectId": "p"}}, "spec.gcs", "use s3"),
        ({"azblob": {"container": "c"}}, "spec.azblob", "use s3"),
        ({"local": {"prefix": "p"}}, "spec.local", "use s3"),
        ({"backupMode": "log"}, "spec.backupMode", "log and volume-snapshot backups need"),
        ({"backupMode": "volume-snapshot"}, "spec.backupMode", "snapshot backups only"),
        ({"calcSizeLevle": "all"}, "spec.calcSizeLevle", "did you mean 'calcSizeLevel'"),
        (
            {"backoffRetryPolicy": {"maxRetryTime": 2}},
            "spec.backoffRetryPolicy.maxRetryTime",
            "unknown field",
        ),
    ],
)
def test_other_engines_and_unknown_fields_stay_refused(
    changes: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(InvalidSpecError) as info:
        _backup(**changes)
    assert info.value.field == field and reason in info.value.message


def test_schedule_level_storage_of_other_engines_is_refused() -> None:
    body = upstream_schedule("nightly", "test1", SPEC)
    body["spec"]["gcs"] = {"projectId": "p"}
    with pytest.raises(
        InvalidSpecError, match=r"spec\.gcs: this storage is not supported by tibackup: use s3"
    ):
        parse_resource(body)


def test_operator_applies_pod_and_volume_fields_and_warns_only_about_the_rest() -> None:
    from tibackup.operator import jobs

    backup = _backup()
    operator = {w.split(" ", 1)[0] for w in ignored_fields(backup, operator=True)}
    assert operator == {f"spec.{f}" for f in IGNORED_IN_BACKUP if f not in APPLIED_BY_OPERATOR}
    pod = jobs.job_manifest(backup, "img")["spec"]["template"]["spec"]
    assert {"name": "extra", "emptyDir": {}} in pod["volumes"]
    assert {"name": "extra", "mountPath": "/extra"} in pod["containers"][0]["volumeMounts"]
    assert "automountServiceAccountToken" not in pod  # the Job needs its token to record the status
    assert jobs.pvc_manifest(backup)["spec"]["volumeAttributesClassName"] == "fast"
