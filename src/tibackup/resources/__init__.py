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
from tibackup.resources.loader import (
    MAX_OBJECT_BYTES,
    Resource,
    check_object_size,
    dump_yaml,
    load_resources,
    parse_resource,
    to_dict,
)
from tibackup.resources.meta import API_GROUP, API_VERSION, ObjectMeta, OwnerReference, rfc3339, utc
from tibackup.resources.s3options import SUPPORTED_S3_OPTIONS, RcloneS3Options, parse_s3_options
from tibackup.resources.status import (
    DELETING_PHASES,
    FINISHED_PHASES,
    BackupCondition,
    BackupStatus,
    Phase,
    human_size_si,
    set_condition,
)
from tibackup.resources.validation import (
    validate_backup,
    validate_backup_spec,
    validate_meta,
    validate_name,
    validate_namespace,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CLEAN_POLICIES",
    "DELETING_PHASES",
    "FINISHED_PHASES",
    "MAX_OBJECT_BYTES",
    "S3_PROVIDERS",
    "SUPPORTED_S3_OPTIONS",
    "Backup",
    "BackupCondition",
    "BackupSchedule",
    "BackupScheduleSpec",
    "BackupScheduleStatus",
    "BackupSpec",
    "BackupStatus",
    "DumplingConfig",
    "ObjectMeta",
    "OwnerReference",
    "Phase",
    "RcloneS3Options",
    "Resource",
    "S3StorageProvider",
    "TiDBAccessConfig",
    "check_object_size",
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
    "to_dict",
    "utc",
    "validate_backup",
    "validate_backup_spec",
    "validate_meta",
    "validate_name",
    "validate_namespace",
]
