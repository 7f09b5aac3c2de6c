"""The ``Restore`` resource (``pingcap.com`` or ``backup.tibackup.io``, ``v1alpha1``; short name ``rt``): its spec.

Field names follow TiDB Operator's ``RestoreSpec`` (``to``, ``backupType``, ``s3`` with ``path``,
``tikvGCLifeTime``, ``storageClassName``, ``storageSize``, ``serviceAccount``, ``tableFilter`` and the Job
pass-through fields), so its Lightning Restore YAML is accepted as is. tibackup's own load options live
under ``spec.tibackup`` (``threads``, ``onDuplicate``, ``fromBackup``); the filter is the reference's
``spec.tableFilter``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from tibackup.resources import defaults
from tibackup.resources.apigroups import ApiVersion
from tibackup.resources.backup import JobPodFields, S3StorageProvider, TiDBAccessConfig
from tibackup.resources.meta import API_VERSION, JSONObject, ObjectMeta, SpecModel
from tibackup.resources.status import Phase, RunStatus

OnDuplicateWord = Literal["error", "replace", "ignore"]
DEFAULT_RESTORE_THREADS = 4


class RestorePhase(StrEnum):
    """TiDB Operator's ``RestoreConditionType`` values. tibackup never retries on its own, so it never
    sets ``RetryFailed``; a Restore that is killed ends ``Failed`` (reason ``Interrupted``)."""

    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    RETRY_FAILED = "RetryFailed"
    INVALID = "Invalid"


# What a Restore's status.phase and condition types can be: RestorePhase's values that tibackup sets (so
# not RetryFailed, which the shared status model would not read back). The one list: the CRD lists only
# these, and RestoreStatus refuses any other (a Backup's Prepare, Clean, Verified, …).
RESTORE_STATUS_VALUES: tuple[str, ...] = tuple(p.value for p in RestorePhase if p.value in set(Phase))


class RestoreS3(S3StorageProvider):
    """``spec.s3``: where the backup to restore is."""

    path: str | None = Field(
        default=None,
        description="The backup: s3://bucket/prefix/backup-<time>/ (a folder) or s3://…/backup-<time>.tgz "
        "(TiDB Operator's archive); 'bucket/…' without s3:// works too. Without it, the folder "
        "bucket/prefix itself is the backup.",
    )
    bucket: str | None = Field(default=None, description="Bucket of the backup (when path is not given).")
    prefix: str | None = Field(default=None, description="The backup folder inside the bucket.")


class TibackupRestoreOptions(SpecModel):
    """``spec.tibackup``: tibackup's own load options (beyond the reference's fields)."""

    threads: int = Field(
        default=DEFAULT_RESTORE_THREADS, ge=1, le=256, description="Connections loading data in parallel."
    )
    on_duplicate: OnDuplicateWord = Field(
        default="error",
        description="Target tables that hold rows: error (refuse, the default), replace (REPLACE INTO), "
        "ignore (INSERT IGNORE).",
    )
    from_backup: str | None = Field(
        default=None,
        description="Restore this Complete Backup of the same namespace: its backupPath and its spec.s3 "
        "(unless spec.s3 is given).",
    )


class RestoreSpec(JobPodFields):
    """``spec`` of a Restore."""

    to: TiDBAccessConfig | None = Field(default=None, description="The database to restore into (required).")
    backup_type: Literal["full"] = Field(
        default=defaults.DEFAULT_BACKUP_TYPE, description="Only full is supported."
    )
    tikv_gc_life_time: str | None = Field(
        default=None, description="Accepted for compatibility; a logical restore does not change GC."
    )
    s3: RestoreS3 | None = Field(
        default=None, description="Where the backup is (required unless spec.tibackup.fromBackup)."
    )
    storage_class_name: str | None = Field(default=None, description="StorageClass of the staging volume.")
    storage_size: str | None = Field(default=None, description="Size of the staging volume, e.g. 10Gi.")
    table_filter: list[str] | None = Field(
        default=None, description="Table-filter rules: only the matching tables are restored (default all)."
    )
    service_account: str = Field(
        default=defaults.DEFAULT_SERVICE_ACCOUNT, description="ServiceAccount of the Job."
    )
    tibackup: TibackupRestoreOptions = Field(default_factory=lambda: TibackupRestoreOptions())
    use_kms: bool | None = None
    # Upstream's BR restore: in the schema only so that validation refuses it with the reason (a physical
    # restore of TiKV data, which a logical load cannot stand in for), not as an unknown field.
    br: JSONObject | None = None
    restore_mode: Literal["snapshot"] | None = Field(
        default=None, description="Only snapshot: pitr and volume-snapshot restores are BR's."
    )
    # Accepted so that upstream's YAML applies as it is; they have no effect here and apply warns about
    # each one given (see resources.upstream, which says why per field).
    tool_image: str | None = None
    pitr_restored_ts: str | None = None
    log_restore_start_ts: str | None = None
    pitr_full_backup_storage_provider: JSONObject | None = None
    federal_volume_restore_phase: str | None = None
    volume_az: str | None = None
    warmup: str | None = None
    warmup_image: str | None = None
    warmup_strategy: str | None = None
    tolerate_single_tikv_outage: bool | None = None
    backoff_limit: int | None = None
    additional_volumes: list[JSONObject] | None = None
    additional_volume_mounts: list[JSONObject] | None = None


class RestoreStatus(RunStatus):
    """The status of a Restore: ``phase`` (``RestorePhase`` values), conditions, ``timeStarted``,
    ``timeCompleted``, ``timeTaken``, ``commitTs`` (the backup's position) as the reference has them;
    beyond it ``backupPath`` (what was loaded), ``backupSize`` (bytes loaded), ``rerunToken`` and
    ``restoredRows``. No ``claimPath``: a Restore claims no folder (only a Backup writes one)."""

    allowed_types: ClassVar[frozenset[str]] = frozenset(RESTORE_STATUS_VALUES)
    owner_kind: ClassVar[str] = "Restore"

    restored_rows: int | None = None


class Restore(SpecModel):
    """One restore of one backup into a database."""

    api_version: ApiVersion = API_VERSION
    kind: Literal["Restore"] = "Restore"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RestoreSpec
    status: RestoreStatus = Field(default_factory=lambda: RestoreStatus())


__all__ = ["Restore", "RestorePhase", "RestoreS3", "RestoreSpec", "RestoreStatus", "TibackupRestoreOptions"]
