"""The Backup and BackupSchedule resources: typed models, defaults, validation, YAML in and out, CRDs."""

from tibackup.resources.backup import (
    CLEAN_POLICIES,
    S3_PROVIDERS,
    Backup,
    BackupSpec,
    DumplingConfig,
    S3StorageProvider,
    TiDBAccessConfig,
)
from tibackup.resources.backup_schedule import BackupSchedule, BackupScheduleSpec, BackupScheduleStatus
from tibackup.resources.duration import format_duration, parse_duration, parse_positive_duration
from tibackup.resources.loader import Resource, dump_yaml, load_resources, parse_resource, to_dict
from tibackup.resources.meta import API_GROUP, API_VERSION, ObjectMeta, OwnerReference, rfc3339, utc
from tibackup.resources.s3options import SUPPORTED_S3_OPTIONS, RcloneS3Options, parse_s3_options
from tibackup.resources.status import (
    DELETING_PHASES,
    FINISHED_PHASES,
    BackupCondition,
    BackupStatus,
    ConditionType,
    Phase,
    drop_condition,
    human_size_si,
    set_condition,
    set_side_condition,
)
from tibackup.resources.validation import validate_backup, validate_backup_spec, validate_name

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CLEAN_POLICIES",
    "DELETING_PHASES",
    "FINISHED_PHASES",
    "S3_PROVIDERS",
    "SUPPORTED_S3_OPTIONS",
    "Backup",
    "BackupCondition",
    "BackupSchedule",
    "BackupScheduleSpec",
    "BackupScheduleStatus",
    "BackupSpec",
    "BackupStatus",
    "ConditionType",
    "DumplingConfig",
    "ObjectMeta",
    "OwnerReference",
    "Phase",
    "RcloneS3Options",
    "Resource",
    "S3StorageProvider",
    "TiDBAccessConfig",
    "drop_condition",
    "dump_yaml",
    "format_duration",
    "human_size_si",
    "load_resources",
    "parse_duration",
    "parse_positive_duration",
    "parse_resource",
    "parse_s3_options",
    "rfc3339",
    "set_condition",
    "set_side_condition",
    "to_dict",
    "utc",
    "validate_backup",
    "validate_backup_spec",
    "validate_name",
]
