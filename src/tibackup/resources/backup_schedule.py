"""The ``BackupSchedule`` resource: a cron schedule, retention, and the template of its Backups."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tibackup.resources.apigroups import ApiVersion
from tibackup.resources.backup import BackupSpec, S3StorageProvider
from tibackup.resources.meta import API_VERSION, JSONObject, KubeTime, ObjectMeta, SpecModel, StatusModel


class BackupScheduleSpec(SpecModel):
    schedule: str = Field(
        description="5-field cron expression, or @hourly/@daily/@weekly/@monthly/@yearly/@every <duration>."
    )
    pause: bool | None = Field(default=None, description="Stop creating Backups; retention keeps running.")
    max_backups: int | None = Field(
        default=None, ge=0, description="Successful Backups to keep; 0 keeps all."
    )
    max_reserved_time: str | None = Field(
        default=None, description="Keep Backups this long (Go duration such as 72h); wins over maxBackups."
    )
    backup_template: BackupSpec = Field(description="Spec of every Backup this schedule creates.")
    storage_class_name: str | None = Field(
        default=None, description="Staging volume class if the template has none."
    )
    storage_size: str | None = Field(
        default=None, description="Staging volume size when the template has none."
    )
    service_account: str | None = Field(
        default=None, description="ServiceAccount when the template has none."
    )
    image_pull_secrets: list[JSONObject] | None = None
    s3: S3StorageProvider | None = Field(default=None, description="Storage when the template has none.")
    # Upstream's log backups and their compaction (BR's): accepted, ignored, warned about at apply.
    log_backup_template: JSONObject | None = None
    compact_backup_template: JSONObject | None = None
    compact_span: str | None = None

    @model_validator(mode="after")
    def _fill_template(self) -> BackupScheduleSpec:
        # Schedule-level settings apply to the template unless the template sets them itself.
        template = self.backup_template
        given = template.model_fields_set
        if self.s3 is not None and template.s3 is None:
            template.s3 = self.s3.model_copy(deep=True)
        if self.service_account and "service_account" not in given:
            template.service_account = self.service_account
        if self.storage_class_name and not template.storage_class_name:
            template.storage_class_name = self.storage_class_name
        if self.storage_size and not template.storage_size:
            template.storage_size = self.storage_size
        if self.image_pull_secrets and not template.image_pull_secrets:
            template.image_pull_secrets = list(self.image_pull_secrets)
        return self


class BackupScheduleStatus(StatusModel):
    last_backup: str | None = Field(default=None, description="Name of the last Backup created.")
    last_backup_time: KubeTime | None = Field(
        default=None, description="Scheduled time of the last Backup created."
    )
    all_backup_clean_time: KubeTime | None = None
    next_backup_time: KubeTime | None = None
    last_successful_backup: str | None = None
    last_successful_backup_time: KubeTime | None = None
    last_skipped: KubeTime | None = Field(
        default=None, description="Scheduled time of the last tick not taken."
    )
    last_skipped_reason: str | None = None


class BackupSchedule(SpecModel):
    """Backups on a schedule, with retention."""

    api_version: ApiVersion = API_VERSION
    kind: Literal["BackupSchedule"] = "BackupSchedule"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: BackupScheduleSpec
    status: BackupScheduleStatus = Field(default_factory=lambda: BackupScheduleStatus())
