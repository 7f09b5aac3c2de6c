"""Fields of TiDB Operator's schema that tibackup accepts but does not act on, and why.

Upstream's YAML must apply unchanged, so every field of its v1.6 Backup / BackupSchedule / Restore is part of the
models; those listed here have no effect in tibackup. ``ignored_fields`` names the ones a resource
sets, so apply (embedded) and the operator can warn about each instead of dropping it silently.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from tibackup.resources.backup import S3_PROVIDERS, Backup, BackupSpec
from tibackup.resources.backup_schedule import BackupSchedule
from tibackup.resources.restore import Restore

_LOG = "log backups are BR's; tibackup makes logical snapshot backups"
_VOLUME = "only for EBS volume-snapshot backups (BR's)"
_NO_POD = "the embedded runtime runs no Pod (the operator gives them to the Job's Pod)"

# Kubernetes spelling of a BackupSpec field -> why tibackup ignores it.
IGNORED_BACKUP_FIELDS: Final[dict[str, str]] = {
    "automountServiceAccountToken": "the backup Job records its status through the API with its "
    "ServiceAccount's token, so the token is always mounted",
    "backoffRetryPolicy": "a failed backup is not retried; the next scheduled Backup runs anew",
    "commitTs": "the snapshot is taken when the backup starts",
    # Upstream's Dumpling image, in which tibackup's Job could not run.
    "toolImage": "it names TiDB Operator's Dumpling image, and tibackup has its own dumper; set the "
    "annotation tibackup.pingcap.com/image to choose tibackup's image",
    "logSubcommand": _LOG,
    "logTruncateUntil": _LOG,
    "logStop": _LOG,
    "calcSizeLevel": _VOLUME,
    "federalVolumeBackupPhase": _VOLUME,
    "resumeGcSchedule": _VOLUME,
    "volumeBackupInitJobMaxActiveSeconds": _VOLUME,
}
# Fields the operator applies to the Job's Pod or the staging volume, and the embedded runtime cannot.
IGNORED_EMBEDDED_FIELDS: Final[dict[str, str]] = {
    "additionalVolumes": _NO_POD,
    "additionalVolumeMounts": _NO_POD,
    "volumeAttributesClassName": "the embedded runtime stages in a local folder, not in a volume",
}
IGNORED_SCHEDULE_FIELDS: Final[dict[str, str]] = {
    "logBackupTemplate": _LOG,
    "compactBackupTemplate": _LOG,
    "compactSpan": _LOG,
}
_NO_STAGING = "the load streams the backup from S3 and needs no staging volume"
_PITR = "point-in-time restores are BR's (restoreMode: pitr); tibackup loads a logical snapshot backup"
_VOLUME_RESTORE = "only for EBS volume-snapshot restores (BR's)"
IGNORED_RESTORE_FIELDS: Final[dict[str, str]] = {
    "pitrRestoredTs": _PITR,
    "logRestoreStartTs": _PITR,
    "pitrFullBackupStorageProvider": _PITR,
    "federalVolumeRestorePhase": _VOLUME_RESTORE,
    "volumeAZ": _VOLUME_RESTORE,
    "warmup": _VOLUME_RESTORE,
    "warmupImage": _VOLUME_RESTORE,
    "warmupStrategy": _VOLUME_RESTORE,
    "tolerateSingleTiKVOutage": "it tunes BR's restore into TiKV; a logical load goes through SQL",
    "backoffLimit": "a failed restore is not retried (the Job's backoffLimit stays 0): rerun it",
    "storageClassName": _NO_STAGING,
    "storageSize": _NO_STAGING,
    "tikvGCLifeTime": "a logical restore holds no snapshot, so tibackup leaves the GC life time alone",
    "toolImage": "it names TiDB Operator's Lightning image, and tibackup has its own loader; set the "
    "annotation tibackup.pingcap.com/image to choose tibackup's image",
}


# Upstream's CRD defaults, which its API server fills in on every Restore: no reason to warn.
UPSTREAM_RESTORE_DEFAULTS: Final[dict[str, object]] = {
    "warmupStrategy": "hybrid",
    "tolerateSingleTiKVOutage": False,
    "backoffLimit": 0,
}


def _set_fields(
    spec: BaseModel, names: dict[str, str], where: str, quiet: dict[str, object] | None = None
) -> list[str]:
    warnings = []
    for name in sorted(spec.model_fields_set):
        alias = type(spec).model_fields[name].alias or name
        value = getattr(spec, name)
        if quiet and alias in quiet and value == quiet[alias]:
            continue
        if alias in names and value is not None:
            warnings.append(f"{where}.{alias} is ignored: {names[alias]}")
    return warnings


def _spec_warnings(spec: BackupSpec, where: str, operator: bool) -> list[str]:
    ignored = IGNORED_BACKUP_FIELDS if operator else {**IGNORED_BACKUP_FIELDS, **IGNORED_EMBEDDED_FIELDS}
    warnings = _set_fields(spec, ignored, where)
    if spec.s3 is not None and spec.s3.provider not in S3_PROVIDERS:
        warnings.append(
            f"{where}.s3.provider {spec.s3.provider!r} is not a provider tibackup knows: it is treated as "
            "a generic S3 service (other)"
        )
    return warnings


def ignored_fields(resource: Backup | BackupSchedule | Restore, operator: bool = False) -> list[str]:
    """One line per upstream field ``resource`` sets that has no effect in this runtime, saying why."""
    if isinstance(resource, Restore):
        ignored = (
            IGNORED_RESTORE_FIELDS if operator else {**IGNORED_RESTORE_FIELDS, **IGNORED_EMBEDDED_FIELDS}
        )
        return _set_fields(resource.spec, ignored, "spec", UPSTREAM_RESTORE_DEFAULTS)
    if isinstance(resource, Backup):
        return _spec_warnings(resource.spec, "spec", operator)
    warnings = _set_fields(resource.spec, IGNORED_SCHEDULE_FIELDS, "spec")
    return warnings + _spec_warnings(resource.spec.backup_template, "spec.backupTemplate", operator)
