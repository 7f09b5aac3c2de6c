"""Resource models: the seed examples, strictness, defaults, validation, status helpers, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tibackup.errors import InvalidSpecError
from tibackup.resources import (
    Backup,
    BackupSchedule,
    BackupStatus,
    Phase,
    dump_yaml,
    format_duration,
    human_size_si,
    load_resources,
    parse_duration,
    parse_s3_options,
    set_condition,
    to_dict,
    validate_backup,
)
from tibackup.resources.defaults import DEFAULT_TABLE_FILTER

SEED = Path(__file__).resolve().parent.parent / "data" / "seed"
SEED_FILES = sorted(SEED.glob("*.yaml"))
NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)

MINIMAL = """
apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata: {name: b1, namespace: test1}
spec:
  from: {host: db.example, secretName: db-secret}
  s3: {provider: aws, bucket: my-bucket}
"""


def load_one(text: str) -> Backup:
    [resource] = load_resources(text)
    assert isinstance(resource, Backup)
    return resource


def backup_with(spec_yaml: str) -> str:
    return "apiVersion: pingcap.com/v1alpha1\nkind: Backup\nmetadata: {name: b1}\nspec:\n" + spec_yaml


def error_of(text: str) -> InvalidSpecError:
    with pytest.raises(InvalidSpecError) as info:
        load_resources(text)
    return info.value


# --- the seed document's eight examples ---------------------------------------------------------


def test_eight_seed_examples() -> None:
    assert len(SEED_FILES) == 8


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_seed_example_loads_and_validates(path: Path) -> None:
    [resource] = load_resources(path.read_text())
    assert resource.metadata.namespace == "test1"
    if isinstance(resource, Backup):
        validate_backup(resource)
        spec = resource.spec
        assert resource.kind == "Backup"
    else:
        assert isinstance(resource, BackupSchedule)
        spec = resource.spec.backup_template
        assert resource.spec.schedule == "*/2 * * * *"
        assert resource.spec.max_reserved_time == "3h"
    assert spec.storage_size == "10Gi"
    assert spec.from_ is not None and spec.from_.secret_name == "backup-demo1-tidb-secret"
    # What it dumps loads again to the same thing.
    [again] = load_resources(dump_yaml(resource))
    assert to_dict(again) == to_dict(resource)


def test_seed_iam_annotation_and_schedule_service_account() -> None:
    [pod_iam] = load_resources((SEED / "03-backup-aws-iam-pod.yaml").read_text())
    assert pod_iam.metadata.annotations == {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"}
    [schedule] = load_resources((SEED / "08-schedule-aws-iam-serviceaccount.yaml").read_text())
    assert isinstance(schedule, BackupSchedule)
    assert schedule.spec.service_account == "tidb-backup-manager"
    assert schedule.spec.backup_template.service_account == "tidb-backup-manager"


def test_schedule_service_account_applies_unless_template_sets_one() -> None:
    text = """
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata: {name: s}
spec:
  schedule: "@daily"
  serviceAccount: irsa-sa
  storageSize: 5Gi
  backupTemplate:
    serviceAccount: %s
    from: {host: h, secretName: s}
    s3: {provider: aws, bucket: bkt}
"""
    [inherited] = load_resources(text.replace("    serviceAccount: %s\n", ""))
    [own] = load_resources(text % "own-sa")
    assert isinstance(inherited, BackupSchedule) and isinstance(own, BackupSchedule)
    assert inherited.spec.backup_template.service_account == "irsa-sa"
    assert inherited.spec.backup_template.storage_size == "5Gi"
    assert own.spec.backup_template.service_account == "own-sa"


def test_multi_document_yaml() -> None:
    text = "\n".join(path.read_text() for path in SEED_FILES)
    kinds = [resource.kind for resource in load_resources(text)]
    assert kinds == ["Backup"] * 4 + ["BackupSchedule"] * 4


# --- strictness: typos, enums, unsupported features, wrong kinds -----------------------------------


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ("  from: {host: h, secretNmae: s}\n", "spec.from.secretNmae", "did you mean 'secretName'"),
        ("  s3: {provider: aws, bucket: bkt, regoin: x}\n", "spec.s3.regoin", "did you mean 'region'"),
        ("  cleanPolice: Delete\n", "spec.cleanPolice", "did you mean 'cleanPolicy'"),
        ("  cleanPolicy: delete\n", "spec.cleanPolicy", "case-sensitive"),
        ("  cleanPolicy: Sometimes\n", "spec.cleanPolicy", "'Retain', 'OnFailure' or 'Delete'"),
        ("  backupType: db\n", "spec.backupType", "full backups only"),
        ("  s3: {provider: '', bucket: bkt}\n", "spec.s3.provider", "at least 1"),
        ("  s3: {bucket: bkt}\n", "spec.s3.provider", "required"),
        ("  gcs: {bucket: bkt}\n", "spec.gcs", "use s3"),
        ("  azblob: {container: c}\n", "spec.azblob", "use s3"),
        ("  local: {prefix: p}\n", "spec.local", "use s3"),
        ("  br: {cluster: c}\n", "spec.br", "not supported by tibackup"),
        ("  from: {host: h, port: many}\n", "spec.from.port", "integer"),
        ("  from: {host: h, port: 70000}\n", "spec.from.port", "65535"),
    ],
)
def test_bad_fields_are_named(spec: str, field: str, words: str) -> None:
    error = error_of(backup_with(spec))
    assert error.field == field
    assert words in error.message
    assert "\n" not in error.message


def test_unknown_top_level_field_and_snake_case_rejected() -> None:
    assert error_of(MINIMAL + "sepc: {}\n").field == "sepc"
    assert error_of(backup_with("  from: {host: h, secret_name: s}\n")).field == "spec.from.secret_name"


def test_wrong_kind_and_api_version() -> None:
    assert error_of(MINIMAL.replace("kind: Backup", "kind: Rstore")).field == "kind"
    error = error_of(MINIMAL.replace("pingcap.com/v1alpha1", "pingcap.com/v1"))
    assert error.field == "apiVersion" and "pingcap.com/v1alpha1" in error.message


def test_bad_yaml_and_non_mapping() -> None:
    assert error_of("spec: [unclosed\n").field == "yaml"
    assert error_of("- 1\n- 2\n").field == "(document)"


def test_error_in_second_document_says_which() -> None:
    text = MINIMAL + "---\n" + MINIMAL.replace("name: b1", "name: b2").replace("bucket:", "buckit:")
    error = error_of(text)
    assert error.field == "spec.s3.buckit" and "document 2, Backup b2" in error.message


def test_pass_through_fields_accepted() -> None:
    backup = load_one(
        MINIMAL
        + """  tolerations: [{key: dedicated, operator: Equal, value: backup, effect: NoSchedule}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}
  resources: {requests: {cpu: "1", memory: 2Gi}}
  env: [{name: TZ, value: UTC}]
  podSecurityContext: {runAsUser: 1000}
  priorityClassName: low
  imagePullSecrets: [{name: regcred}]
  toolImage: example/tibackup:1.0
  tableFilter: ["test.*"]
  cleanOption: {pageSize: 1000}
"""
    )
    assert backup.spec.tolerations and backup.spec.tolerations[0]["key"] == "dedicated"
    assert backup.spec.resources == {"requests": {"cpu": "1", "memory": "2Gi"}}
    assert backup.spec.table_filter == ["test.*"]


# --- defaults ------------------------------------------------------------------------------------


def test_every_default_applied() -> None:
    spec = load_one(MINIMAL).spec
    assert spec.from_ is not None
    assert spec.from_.port == 4000
    assert spec.from_.user == "root"
    assert spec.tikv_gc_life_time == "72h"
    assert spec.service_account == "tidb-backup-manager"
    assert spec.clean_policy == "Retain"
    assert spec.backup_type == "full"
    assert spec.dumpling.options == ["--threads=16", "--rows=10000"]
    assert spec.table_filter == list(DEFAULT_TABLE_FILTER)
    assert spec.table_filter[0] == "*.*"
    for schema in ("mysql", "sys", "INFORMATION_SCHEMA", "PERFORMANCE_SCHEMA", "METRICS_SCHEMA"):
        assert schema in spec.table_filter[1]
    assert spec.table_filter[1].startswith("!/(?i)^(") and "INSPECTION_SCHEMA" in spec.table_filter[1]
    assert spec.s3 is not None
    assert spec.s3.storage_class == "STANDARD_IA"
    assert spec.s3.acl == "private"


def test_dumpling_options_default_only_when_empty() -> None:
    empty = load_one(MINIMAL + "  dumpling: {options: []}\n")
    own = load_one(MINIMAL + "  dumpling: {options: [--threads=4, -F, 256MiB]}\n")
    assert empty.spec.dumpling.options == ["--threads=16", "--rows=10000"]
    assert own.spec.dumpling.options == ["--threads=4", "-F", "256MiB"]


def test_deprecated_dumpling_table_filter_used_when_no_table_filter() -> None:
    deprecated = load_one(MINIMAL + "  dumpling: {tableFilter: ['test.*']}\n")
    both = load_one(MINIMAL + "  dumpling: {tableFilter: ['test.*']}\n  tableFilter: ['app.*']\n")
    assert deprecated.spec.table_filter == ["test.*"]
    assert both.spec.table_filter == ["app.*"]


def test_aws_defaults_do_not_override_user_values() -> None:
    spec = load_one(
        MINIMAL.replace("bucket: my-bucket", "bucket: bkt, storageClass: STANDARD, acl: bucket-owner-read")
    )
    assert spec.spec.s3 is not None
    assert (spec.spec.s3.storage_class, spec.spec.s3.acl) == ("STANDARD", "bucket-owner-read")


def test_endpoint_scheme_defaults() -> None:
    def endpoint(provider: str, value: str) -> str | None:
        text = MINIMAL.replace("provider: aws", f"provider: {provider}, endpoint: '{value}'")
        s3 = load_one(text).spec.s3
        assert s3 is not None
        return s3.endpoint

    assert endpoint("ceph", "rgw.local:7480") == "http://rgw.local:7480"
    assert endpoint("ceph", "https://rgw.local") == "https://rgw.local"
    assert endpoint("minio", "minio.local:9000") == "https://minio.local:9000"
    assert endpoint("ceph", "http://rgw.local") == "http://rgw.local"
    s3 = load_one(MINIMAL.replace("provider: aws", "provider: ceph, endpoint: x")).spec.s3
    assert s3 is not None and s3.storage_class is None and s3.acl is None  # aws-only defaults


def test_to_dict_omits_none_and_uses_kubernetes_names() -> None:
    data = to_dict(load_one(MINIMAL))
    assert "status" not in data
    assert data["spec"]["from"] == {
        "host": "db.example",
        "port": 4000,
        "user": "root",
        "secretName": "db-secret",
    }
    assert data["spec"]["tikvGCLifeTime"] == "72h"
    assert "useKMS" not in data["spec"]


# --- validation: reasons name the field -------------------------------------------------------------


FROM = "  from: {host: h, secretName: s}\n"
VALID = FROM + "  s3: {provider: aws, bucket: bkt}\n"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("  s3: {provider: aws, bucket: bkt}\n", "spec.from"),
        ("  from: {secretName: s}\n  s3: {provider: aws, bucket: bkt}\n", "spec.from.host"),
        ("  from: {host: h}\n  s3: {provider: aws, bucket: bkt}\n", "spec.from.secretName"),
        (FROM, "spec.s3"),
        (FROM + "  s3: {provider: aws}\n", "spec.s3.bucket"),
        (FROM + "  s3: {provider: aws, bucket: a/b}\n", "spec.s3.bucket"),
        (FROM + "  s3: {provider: aws, bucket: b}\n", "spec.s3.bucket"),
        (FROM + "  s3: {provider: ceph, bucket: bkt}\n", "spec.s3.endpoint"),
        (FROM + "  s3: {provider: aws, bucket: bkt, endpoint: 'ftp://x'}\n", "spec.s3.endpoint"),
        (FROM + "  s3: {provider: aws, bucket: bkt, sse: rot13}\n", "spec.s3.sse"),
        (FROM + "  s3: {provider: aws, bucket: bkt, acl: open}\n", "spec.s3.acl"),
        (FROM + "  s3: {provider: aws, bucket: bkt, options: [--fast]}\n", "spec.s3.options[0]"),
        (FROM + "  s3: {provider: aws, bucket: bkt, options: [--s3-sse-kms-key-id=k]}\n", "spec.s3.sse"),
        (VALID + "  tikvGCLifeTime: 3 days\n", "spec.tikvGCLifeTime"),
        (VALID + "  tikvGCLifeTime: 0s\n", "spec.tikvGCLifeTime"),
        (VALID + "  storageSize: lots\n", "spec.storageSize"),
        (VALID + "  useKMS: true\n", "spec.useKMS"),
        (VALID + "  tableFilter: ['  ']\n", "spec.tableFilter[0]"),
        (VALID + "  dumpling: {options: ['-o', '/tmp/x']}\n", "spec.dumpling.options[0]"),
        (VALID + "  dumpling: {options: ['--threads=4', '--password=x']}\n", "spec.dumpling.options[1]"),
    ],
)
def test_invalid_spec_names_the_field(spec: str, field: str) -> None:
    backup = load_one(backup_with(spec))
    with pytest.raises(InvalidSpecError) as info:
        validate_backup(backup)
    assert info.value.field == field
    assert info.value.message.startswith(field + ": ")
    assert info.value.reason == "InvalidSpec"


def test_invalid_name() -> None:
    with pytest.raises(InvalidSpecError) as info:
        validate_backup(load_one(MINIMAL.replace("name: b1", "name: Bad_Name")))
    assert info.value.field == "metadata.name"


def test_s3_options_mapping() -> None:
    options = parse_s3_options(
        [
            "--ignore-checksum",
            "--s3-chunk-size=64M",
            "--s3-upload-concurrency",
            "8",
            "--s3-force-path-style=false",
        ]
    )
    assert options.ignore_checksum
    assert options.part_size == 64 * 1024**2
    assert options.concurrency == 8
    assert options.force_path_style is False
    assert options.storage_overrides() == {
        "force_path_style": False,
        "part_size": 64 * 1024**2,
        "concurrency": 8,
    }
    with pytest.raises(InvalidSpecError, match=r"options\[0\]"):
        parse_s3_options(["--s3-chunk-size=1k"])
    with pytest.raises(InvalidSpecError, match="needs a value"):
        parse_s3_options(["--s3-region"])
    with pytest.raises(InvalidSpecError, match="not an option tibackup supports"):
        parse_s3_options(["--no-check-certificate"])


# --- status helpers --------------------------------------------------------------------------------


def test_set_condition_one_entry_per_type_phase_follows_last() -> None:
    status = BackupStatus()
    status = set_condition(status, Phase.SCHEDULED, None, None, NOW)
    status = set_condition(status, "Running", None, None, NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=5)
    status = set_condition(status, Phase.FAILED, "DatabaseError", "connection refused", later)
    status = set_condition(status, Phase.SCHEDULED, "Rescheduled", "again", later)
    assert status.phase == Phase.SCHEDULED
    assert [c.type for c in status.conditions or []] == ["Scheduled", "Running", "Failed"]
    scheduled = status.condition("Scheduled")
    assert scheduled is not None
    assert scheduled.reason == "Rescheduled" and scheduled.last_transition_time == NOW  # status unchanged
    flipped = set_condition(status, Phase.SCHEDULED, None, None, later, condition_status="False")
    flipped_cond = flipped.condition(Phase.SCHEDULED)
    assert flipped_cond is not None and flipped_cond.last_transition_time == later


def test_set_condition_is_pure() -> None:
    before = set_condition(BackupStatus(), Phase.RUNNING, None, None, NOW)
    after = set_condition(before, Phase.COMPLETE, None, None, NOW)
    assert before.phase == Phase.RUNNING and len(before.conditions or []) == 1
    assert after.phase == Phase.COMPLETE and len(after.conditions or []) == 2


def test_status_round_trips_with_kubernetes_times() -> None:
    backup = load_one(MINIMAL)
    backup.status = set_condition(backup.status, Phase.COMPLETE, None, None, NOW)
    backup.status.time_started = datetime(2024, 3, 1, 11, 0, 0)  # naive means UTC
    data = to_dict(backup)
    assert data["status"]["timeStarted"] == "2024-03-01T11:00:00Z"
    assert data["status"]["conditions"][0] == {
        "type": "Complete",
        "status": "True",
        "lastTransitionTime": "2024-03-01T12:00:00Z",
    }
    [again] = load_resources(dump_yaml(backup))
    assert again.status == backup.status


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (9, "9 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1300, "1.3 kB"),
        (82_854_982, "83 MB"),
        (1_300_000_000, "1.3 GB"),
        (9_960_000_000, "10 GB"),
        (1_000_000_000_000, "1.0 TB"),
    ],
)
def test_human_size_si(size: int, text: str) -> None:
    assert human_size_si(size) == text


# --- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("72h", 72 * 3600), ("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("0", 0),
     ("500ms", 0.5), ("2h45m30s", 9930), ("-1m", -60)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "72", "3 days", "1d", "h", "1h 30m", "1..5h", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidSpecError) as info:
        parse_duration(text, "spec.maxReservedTime")
    assert info.value.field == "spec.maxReservedTime"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (5, "5s"),
        (120, "2m0s"),
        (3605, "1h0m5s"),
        (1.5, "1.5s"),
        (0.25, "250ms"),
        (93784, "26h3m4s"),
    ],
)
def test_format_duration_like_go(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
