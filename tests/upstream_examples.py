"""TiDB Operator v1.6 Backup / BackupSchedule YAMLs, written from upstream's schema (BackupSpec,
BackupScheduleSpec, S3StorageProvider, BackoffRetryPolicy, CleanOption …), every field tibackup can
accept filled in, with the test servers' addresses put in."""

from __future__ import annotations

from typing import Any

# Fields the documents set that have no effect here: the warnings apply must print, one per field.
IGNORED_IN_BACKUP = (
    "additionalVolumeMounts", "additionalVolumes", "automountServiceAccountToken", "backoffRetryPolicy",
    "calcSizeLevel", "commitTs", "federalVolumeBackupPhase", "logStop", "logTruncateUntil",
    "resumeGcSchedule", "toolImage", "volumeAttributesClassName", "volumeBackupInitJobMaxActiveSeconds",
)  # fmt: skip
IGNORED_IN_SCHEDULE = ("compactBackupTemplate", "compactSpan", "logBackupTemplate")
# Applied by the operator to the Job's Pod and the staging PVC; ignored (warned about) by embedded.
APPLIED_BY_OPERATOR = ("additionalVolumeMounts", "additionalVolumes", "volumeAttributesClassName")


def upstream_backup_spec(
    host: str, port: int, db_secret: str, endpoint: str, bucket: str, s3_secret: str, database: str
) -> dict[str, Any]:
    """A Backup spec as a v1.6 user writes it: s3.path instead of bucket/prefix, upper-case provider."""
    return {
        "backupType": "full",
        "backupMode": "snapshot",
        "from": {"host": host, "port": port, "user": "root", "secretName": db_secret},
        "s3": {"provider": "Ceph", "endpoint": endpoint, "path": f"s3://{bucket}/upstream/v16",
               "secretName": s3_secret, "region": "us-east-1", "options": ["--ignore-checksum"]},
        "tikvGCLifeTime": "72h",
        "tableFilter": [f"{database}.*"],
        "dumpling": {"options": ["--threads=2", "--rows=1000"]},
        "storageSize": "1Gi",
        "cleanPolicy": "Retain",
        "cleanOption": {"pageSize": 1000, "retryCount": 5, "backoffEnabled": True,
                        "disableBatchConcurrency": False, "batchConcurrency": 10, "routineConcurrency": 100},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "env": [{"name": "TZ", "value": "UTC"}],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "podSecurityContext": {"runAsNonRoot": True},
        "priorityClassName": "",
        "imagePullSecrets": [{"name": "registry"}],
        "serviceAccount": "tidb-backup-manager",
        "toolImage": "pingcap/dumpling:v8.5.0",
        "automountServiceAccountToken": False,
        "volumeAttributesClassName": "fast",
        "additionalVolumes": [{"name": "extra", "emptyDir": {}}],
        "additionalVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "backoffRetryPolicy": {"minRetryDuration": "300s", "maxRetryTimes": 2, "retryTimeout": "30m"},
        "commitTs": "400036290571534337",
        "logTruncateUntil": "2024-01-01 00:00:00",
        "logStop": False,
        "calcSizeLevel": "all",
        "federalVolumeBackupPhase": "initialize",
        "resumeGcSchedule": False,
        "volumeBackupInitJobMaxActiveSeconds": 600,
    }  # fmt: skip


def upstream_backup(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def upstream_schedule(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A v1.6 BackupSchedule: its storage at the schedule level, a log backup template beside it."""
    template = {k: v for k, v in spec.items() if k != "s3"}
    log_template = {"backupMode": "log", "logSubcommand": "log-start", "s3": spec["s3"],
                    "br": {"cluster": "basic", "clusterNamespace": namespace}}  # fmt: skip
    return {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "BackupSchedule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "0 2 * * *", "pause": True, "maxReservedTime": "72h", "s3": spec["s3"],
                 "storageSize": "1Gi", "backupTemplate": template, "logBackupTemplate": log_template,
                 "compactSpan": "24h", "compactBackupTemplate": {"concurrency": 4}},
    }  # fmt: skip
