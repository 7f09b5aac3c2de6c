"""The Restore resource: TiDB Operator's YAML accepted as is, tibackup's options under spec.tibackup,
unknown fields refused, and the pure steps of a Restore run (validate, locate the backup)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tibackup.errors import InvalidSpecError, TibackupError
from tibackup.manager.restore_run import load_config, locate, validate
from tibackup.resources import Backup, Phase, Restore, load_resources, parse_resource
from tibackup.resources.upstream import ignored_fields

# The shape of TiDB Operator's "restore from S3 with TiDB Lightning" example.
UPSTREAM = """
apiVersion: pingcap.com/v1alpha1
kind: Restore
metadata:
  name: demo2-restore-s3
  namespace: test2
  annotations:
    iam.amazonaws.com/role: arn:aws:iam::123456789012:role/user
spec:
  backupType: full
  to:
    host: 127.0.0.1
    port: 4000
    user: root
    secretName: restore-demo2-tidb-secret
    tlsClientSecretName: demo2-tidb-client-secret
  s3:
    provider: ceph
    endpoint: http://127.0.0.1:9000
    secretName: s3-secret
    path: s3://my-bucket/my-folder/backup-2020-12-17T10:12:51Z.tgz
  storageClassName: local-storage
  storageSize: 1Gi
  serviceAccount: tidb-backup-manager
  tikvGCLifeTime: 72h
  tableFilter: ["app.*"]
  tibackup: {threads: 8, onDuplicate: replace}
"""


def upstream() -> Restore:
    (restore,) = load_resources(UPSTREAM)
    assert isinstance(restore, Restore)
    return restore


def test_upstream_yaml_is_accepted_with_tibackup_options() -> None:
    restore = upstream()
    validate(restore)
    spec = restore.spec
    assert spec.to and spec.to.tls_client_secret_name == "demo2-tidb-client-secret"
    assert (spec.tibackup.threads, spec.tibackup.on_duplicate) == (8, "replace")
    config = load_config(restore, "s3://x/y/", "pw")
    assert (config.threads, config.on_duplicate.value, config.progress) == (8, "replace", False)
    assert config.table_filter is not None and config.table_filter.rules == ("app.*",)


def test_unknown_field_is_refused_naming_it() -> None:
    doc = yaml.safe_load(UPSTREAM)
    doc["spec"]["tibackup"]["thread"] = 2
    with pytest.raises(InvalidSpecError, match=r"spec\.tibackup\.thread"):
        parse_resource(doc)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": None}, "spec.to"),
        ({"to": {"host": "db"}}, "spec.to.secretName"),
        ({"s3": None}, "spec.s3"),
        ({"s3": {"provider": "ceph", "endpoint": "http://e"}}, "spec.s3.path"),
        ({"s3": {"provider": "ceph", "path": "s3://bkt/p/"}}, "spec.s3.endpoint"),
        ({"tableFilter": ["db.t["]}, "spec.tableFilter"),
        ({"storageSize": "lots"}, "spec.storageSize"),
        ({"br": {"cluster": "basic", "clusterNamespace": "tidb"}}, "spec.br"),  # upstream's BR restore
        ({"useKMS": True}, "spec.useKMS"),  # as a Backup's: refused, not silently ignored
    ],
)
def test_spec_that_can_never_work_is_invalid(change: dict[str, object], field: str) -> None:
    doc = yaml.safe_load(UPSTREAM)
    doc["spec"].update(change)
    restore = parse_resource(doc)
    assert isinstance(restore, Restore)
    with pytest.raises(InvalidSpecError) as caught:
        validate(restore)
    assert caught.value.field == field, caught.value.message
    assert "spec.from" not in caught.value.message


def test_locate_path_archive_folder_and_bucket_prefix() -> None:
    restore = upstream()
    s3, source = locate(restore, None)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "my-folder")
    assert source == "s3://my-bucket/my-folder/backup-2020-12-17T10:12:51Z.tgz"
    assert restore.spec.s3 is not None
    restore.spec.s3.path = "my-bucket/my-folder/backup-1/"  # TiDB Operator's form without s3://
    assert locate(restore, None)[1] == "s3://my-bucket/my-folder/backup-1/"
    restore.spec.s3.path, restore.spec.s3.bucket, restore.spec.s3.prefix = None, "b", "/p/q/"
    s3, source = locate(restore, None)
    assert (s3.bucket, s3.prefix, source) == ("b", "p/q", "s3://b/p/q/")


def _backup(phase: Phase | None) -> Backup:
    backup = Backup.model_validate(
        {
            "metadata": {"name": "nightly", "namespace": "test2"},
            "spec": {
                "from": {"host": "h", "secretName": "s"},
                "s3": {"provider": "ceph", "endpoint": "http://e", "bucket": "bk", "secretName": "s3k"},
            },
        }
    )
    backup.status.phase = phase
    backup.status.backup_path = "s3://bk/backup-2026-01-01T00:00:00Z/"
    return backup


def test_from_backup_takes_its_path_and_s3_settings() -> None:
    doc = yaml.safe_load(UPSTREAM)
    del doc["spec"]["s3"]
    doc["spec"]["tibackup"] = {"fromBackup": "nightly"}
    restore = parse_resource(doc)
    assert isinstance(restore, Restore)
    validate(restore)
    s3, source = locate(restore, _backup(Phase.COMPLETE))
    assert (s3.bucket, s3.prefix, s3.secret_name, s3.endpoint) == (
        "bk",
        "backup-2026-01-01T00:00:00Z",
        "s3k",
        "http://e",
    )
    assert source == "s3://bk/backup-2026-01-01T00:00:00Z/"
    with pytest.raises(TibackupError, match="is Failed, not Complete") as caught:
        locate(restore, _backup(Phase.FAILED))
    assert caught.value.reason == "BackupNotComplete"


def test_accepted_but_unused_upstream_fields_are_named_in_warnings() -> None:
    """storageClassName/storageSize/tikvGCLifeTime/toolImage apply (upstream's YAML unchanged) and each
    is named with why it has no effect, as a Backup's ignored fields are (apply and the operator)."""
    doc = yaml.safe_load(UPSTREAM)
    doc["spec"]["toolImage"] = "pingcap/tidb-lightning:v7.5.0"
    restore = parse_resource(doc)
    assert isinstance(restore, Restore)
    warnings = ignored_fields(restore)
    assert [w.split(" ")[0] for w in warnings] == [
        "spec.storageClassName", "spec.storageSize", "spec.tikvGCLifeTime", "spec.toolImage",
    ]  # fmt: skip
    assert all(" is ignored: " in w for w in warnings)
    assert ignored_fields(restore, operator=True) == warnings
    for key in ("storageClassName", "storageSize", "tikvGCLifeTime", "toolImage"):
        del doc["spec"][key]
    plain = parse_resource(doc)
    assert isinstance(plain, Restore) and ignored_fields(plain) == []


def test_restore_in_tibackup_group_applies() -> None:
    doc = yaml.safe_load(UPSTREAM)
    doc["apiVersion"] = "backup.tibackup.io/v1alpha1"
    restore = parse_resource(doc)
    assert isinstance(restore, Restore) and restore.api_version == "backup.tibackup.io/v1alpha1"
    doc["apiVersion"] = "example.com/v1alpha1"
    with pytest.raises(InvalidSpecError, match="apiVersion"):
        parse_resource(doc)


def test_apply_of_a_restore_without_a_controller_says_the_controller_runs_restores(tmp_path: Path) -> None:
    from tests.integration.test_embedded_cli import tib

    applied = tib("apply", "-f", "-", "--state-dir", str(tmp_path / "state"), stdin=UPSTREAM)
    assert applied.code == 0, applied
    (note,) = [line for line in applied.err.splitlines() if line.startswith("note: ")]
    assert "to run Backups, Restores and schedules" in note and "Backup or Restore again with --wait" in note


# TiDB Operator's PITR example (docs: "Point-in-time recovery" from S3 with BR), as v1.6 spells it.
UPSTREAM_PITR = """
apiVersion: pingcap.com/v1alpha1
kind: Restore
metadata:
  name: demo3-restore-s3
  namespace: test1
spec:
  restoreMode: pitr
  br:
    cluster: demo3
  s3:
    provider: aws
    region: us-west-1
    bucket: my-bucket
    prefix: my-log-backup-folder-pitr
  pitrRestoredTs: "2022-10-10T17:21:00+08:00"
  pitrFullBackupStorageProvider:
    s3:
      provider: aws
      region: us-west-1
      bucket: my-bucket
      prefix: my-full-backup-folder-pitr
"""
# TiDB Operator's manifests/backup/restore-aws-s3-br.yaml (its comments left out).
UPSTREAM_BR = """
apiVersion: pingcap.com/v1alpha1
kind: Restore
metadata:
  name: demo1-restore-s3-br
  namespace: test1
spec:
  br:
    cluster: myCluster
  to:
    host: 172.30.6.56
    secretName: mySecret
  s3:
    provider: aws
    region: us-west-2
    bucket: backup
    prefix: test1-demo1
"""
# Every BR-only field of v1.6's RestoreSpec that a logical load has no use for, with a value that asks for
# something (not upstream's default).
BR_ONLY_FIELDS: dict[str, object] = {
    "pitrRestoredTs": "2022-10-10T17:21:00+08:00",
    "logRestoreStartTs": "435000000000000000",
    "pitrFullBackupStorageProvider": {"s3": {"provider": "aws", "bucket": "b", "prefix": "full"}},
    "federalVolumeRestorePhase": "restore-volume",
    "volumeAZ": "us-west-2a",
    "warmup": "sync",
    "warmupImage": "example/warmup:v1",
    "warmupStrategy": "fsr",
    "tolerateSingleTiKVOutage": True,
    "backoffLimit": 3,
    "additionalVolumes": [{"name": "extra", "emptyDir": {}}],
    "additionalVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
}


def test_br_only_fields_are_accepted_and_each_ignored_with_a_warning() -> None:
    doc = yaml.safe_load(UPSTREAM)
    doc["spec"].update(BR_ONLY_FIELDS)
    restore = parse_resource(doc)
    assert isinstance(restore, Restore)
    validate(restore)
    warned = {w.split(" ", 1)[0]: w for w in ignored_fields(restore)}
    for name in BR_ONLY_FIELDS:
        assert f"spec.{name}" in warned, sorted(warned)
        assert warned[f"spec.{name}"].startswith(f"spec.{name} is ignored: "), warned[f"spec.{name}"]
    assert "BR" in warned["spec.pitrRestoredTs"] and "BR" in warned["spec.volumeAZ"]


def test_upstream_defaults_of_br_only_fields_apply_without_warnings() -> None:
    """What an upstream API server fills in on every Restore (its CRD's defaults) is no reason to warn."""
    doc = yaml.safe_load(UPSTREAM)
    defaults = {"restoreMode": "snapshot", "warmupStrategy": "hybrid", "tolerateSingleTiKVOutage": False,
                "backoffLimit": 0}  # fmt: skip
    doc["spec"].update(defaults)
    restore = parse_resource(doc)
    assert isinstance(restore, Restore)
    validate(restore)
    assert not [w for w in ignored_fields(restore) if w.split(" ", 1)[0].removeprefix("spec.") in defaults]


@pytest.mark.parametrize("mode", ["pitr", "volume-snapshot"])
def test_restore_modes_of_br_are_refused_with_the_reason(mode: str) -> None:
    doc = yaml.safe_load(UPSTREAM)
    doc["spec"]["restoreMode"] = mode
    with pytest.raises(InvalidSpecError) as caught:
        parse_resource(doc)
    assert caught.value.field == "spec.restoreMode"
    assert f"{mode!r} is not supported" in caught.value.message and "BR" in caught.value.message
    assert "unknown field" not in caught.value.message


def test_upstream_pitr_example_is_refused_for_its_mode_not_as_unknown_fields() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        load_resources(UPSTREAM_PITR)
    assert caught.value.field == "spec.restoreMode", caught.value.message
    assert "unknown field" not in caught.value.message


def test_upstream_br_example_is_refused_naming_br() -> None:
    (restore,) = load_resources(UPSTREAM_BR)
    assert isinstance(restore, Restore)
    with pytest.raises(InvalidSpecError) as caught:
        validate(restore)
    assert caught.value.field == "spec.br"
    assert "BR restores are not supported by tibackup" in caught.value.message


def test_a_restores_status_refuses_backup_only_phases_and_conditions() -> None:
    """The Restore CRD lists only a Restore's phases; the Python model takes the same list: a stored or
    received status with a Backup-only phase or condition is refused, naming the value, and the phase
    helpers never produce one. A Backup's status keeps them all."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from tibackup.manager import phases
    from tibackup.resources.restore import RESTORE_STATUS_VALUES, RestoreStatus
    from tibackup.resources.status import BackupStatus, ConditionType, set_condition, set_side_condition

    now = datetime(2024, 3, 1, tzinfo=UTC)
    spec = {"to": {"host": "db", "secretName": "s"}}
    for phase in ("Prepare", "Clean", "CleanFailed"):
        with pytest.raises(ValidationError, match=f"'{phase}'.*a Restore's status is one of Scheduled"):
            Restore.model_validate({"metadata": {"name": "r"}, "spec": spec, "status": {"phase": phase}})
    for kind in ("Verified", "GCLifeTimeRestorePending", "Prepare"):
        with pytest.raises(ValidationError, match=f"'{kind}'"):
            RestoreStatus.model_validate({"conditions": [{"type": kind, "status": "True"}]})
    restore = RestoreStatus()
    with pytest.raises(ValueError, match="'Prepare'"):
        phases.to_prepare(restore, "preparing", now)
    with pytest.raises(ValueError, match="'Verified'"):
        set_side_condition(restore, ConditionType.VERIFIED, "Verified", "ok", now)
    with pytest.raises(ValueError, match="'Clean'"):
        set_condition(restore, Phase.CLEAN, "Deleting", "x", now)
    with pytest.raises(ValidationError, match="'Prepare'"):
        restore.phase = Phase.PREPARE
    for value in RESTORE_STATUS_VALUES:
        assert set_condition(RestoreStatus(), value, None, None, now).phase == value
    assert set(RestoreStatus.allowed_types) == set(RESTORE_STATUS_VALUES)
    backup = BackupStatus.model_validate({"phase": "Prepare", "conditions": [{"type": "Verified"}]})
    assert set_condition(backup, Phase.CLEAN, None, None, now).phase == Phase.CLEAN
