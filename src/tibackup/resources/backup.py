"""The ``Backup`` resource (``pingcap.com/v1alpha1``): one definition of its spec, defaults included.

Field names, nesting and defaults follow TiDB Operator's ``BackupSpec`` so its YAML is accepted as is.
Defaults are applied when a model is built, so every consumer sees the effective values.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from tibackup.resources import defaults
from tibackup.resources.apigroups import ApiVersion
from tibackup.resources.meta import API_VERSION, JSONObject, ObjectMeta, SpecModel
from tibackup.resources.status import BackupStatus

# rclone's S3 providers, which upstream passes on as they are written (its field is a free string).
# Any case is accepted (``AWS``, ``Ceph``); a name outside this list is kept and treated as a generic
# S3 service, which needs an endpoint, and apply warns about it.
S3_PROVIDERS: tuple[str, ...] = (
    "aws",
    "alibaba",
    "arvancloud",
    "ceph",
    "chinamobile",
    "cloudflare",
    "digitalocean",
    "dreamhost",
    "gcs",
    "huaweiobs",
    "ibmcos",
    "idrive",
    "ionos",
    "leviia",
    "liara",
    "linode",
    "lyvecloud",
    "magalu",
    "minio",
    "netease",
    "petabox",
    "qiniu",
    "rackcorp",
    "rclone",
    "scaleway",
    "seaweedfs",
    "stackpath",
    "storj",
    "synology",
    "tencentcos",
    "wasabi",
    "other",
)
CleanPolicy = Literal["Retain", "OnFailure", "Delete"]
CLEAN_POLICIES: tuple[str, ...] = get_args(CleanPolicy)


class TiDBAccessConfig(SpecModel):
    """``spec.from``: the database to back up (any MySQL-compatible server, not only TiDB)."""

    host: str | None = Field(default=None, description="Address of the TiDB/MySQL server (required).")
    port: int = Field(default=defaults.DEFAULT_PORT, ge=1, le=65535, description="Port of the server.")
    user: str = Field(default=defaults.DEFAULT_USER, description="Database user.")
    secret_name: str | None = Field(
        default=None, description="Secret holding the user's password under the key `password` (required)."
    )
    tls_client_secret_name: str | None = Field(
        default=None, description="Secret with `ca.crt`, `tls.crt`, `tls.key` for a TLS connection."
    )


class S3StorageProvider(SpecModel):
    """``spec.s3``: where the backup goes."""

    provider: str = Field(
        min_length=1, description="Implementation of the S3 API (rclone's provider names, any case)."
    )
    region: str | None = None
    path: str | None = Field(
        default=None,
        description="`s3://bucket/prefix` or `bucket/prefix`: bucket and prefix in one field (upstream's "
        "format); must agree with bucket and prefix when those are given too.",
    )
    bucket: str | None = Field(default=None, description="Bucket that receives the backup (required).")
    prefix: str | None = Field(default=None, description="Folder inside the bucket.")
    endpoint: str | None = Field(
        default=None, description="Endpoint URL; required for ceph, minio and other."
    )
    storage_class: str | None = None
    acl: str | None = None
    secret_name: str | None = Field(
        default=None,
        description="Secret with `access_key` and `secret_key`; without it credentials come from the "
        "environment (IAM role, IRSA, instance profile).",
    )
    options: list[str] | None = Field(default=None, description="rclone-style flags, e.g. --ignore-checksum.")
    sse: str | None = Field(default=None, description="Server-side encryption: AES256 or aws:kms.")
    force_path_style: bool | None = Field(
        default=None, description="Address the bucket in the path, not the host."
    )

    @model_validator(mode="after")
    def _provider_defaults(self) -> S3StorageProvider:
        self.provider = self.provider.strip().lower()
        if self.path:
            self._split_path()
        if self.provider == "aws":
            if not self.storage_class:
                self.storage_class = defaults.AWS_DEFAULT_STORAGE_CLASS
            if not self.acl:
                self.acl = defaults.AWS_DEFAULT_ACL
        if self.endpoint and "://" not in self.endpoint:
            # The reference (rclone) reaches ceph over http and every other provider over https.
            scheme = "http" if self.provider == "ceph" else "https"
            self.endpoint = f"{scheme}://{self.endpoint}"
        return self

    def _split_path(self) -> None:
        """``path`` fills in bucket and prefix; given as well, they must name the same place."""
        assert self.path is not None
        bucket, _, prefix = self.path.strip().removeprefix("s3://").strip("/").partition("/")
        if self.bucket and self.bucket != bucket:
            raise ValueError(
                f"s3.path names bucket {bucket!r} but s3.bucket is {self.bucket!r}: give one of them"
            )
        own_prefix = (self.prefix or "").strip("/")
        if own_prefix and prefix and own_prefix != prefix.strip("/"):
            raise ValueError(
                f"s3.path names prefix {prefix!r} but s3.prefix is {self.prefix!r}: give one of them"
            )
        self.bucket = bucket or None
        if prefix and not own_prefix:
            self.prefix = prefix


class DumplingConfig(SpecModel):
    """``spec.dumpling``: options of the dumper."""

    options: list[str] = Field(
        default_factory=lambda: list(defaults.DEFAULT_DUMPLING_OPTIONS),
        description="Dumpling flags; when empty, --threads=16 --rows=10000.",
    )
    table_filter: list[str] | None = Field(default=None, description="Deprecated: use spec.tableFilter.")

    @model_validator(mode="after")
    def _default_options(self) -> DumplingConfig:
        if not self.options:
            self.options = list(defaults.DEFAULT_DUMPLING_OPTIONS)
        return self


class BackoffRetryPolicy(SpecModel):
    """``spec.backoffRetryPolicy``: upstream's retries of a failed backup Job (ignored by tibackup)."""

    min_retry_duration: str | None = None
    max_retry_times: int | None = None
    retry_timeout: str | None = None


class JobPodFields(SpecModel):
    """The fields a Backup and a Restore pass through to their Job's Pod, shaped as in Kubernetes' core/v1
    types (one definition for both kinds; ``PASS_THROUGH_POD_FIELDS`` names them)."""

    env: list[JSONObject] | None = None
    resources: JSONObject | None = None
    tolerations: list[JSONObject] | None = None
    affinity: JSONObject | None = None
    pod_security_context: JSONObject | None = None
    priority_class_name: str | None = None
    image_pull_secrets: list[JSONObject] | None = None


PASS_THROUGH_POD_FIELDS: frozenset[str] = frozenset(JobPodFields.model_fields)


class BackupSpec(JobPodFields):
    """``spec`` of a Backup, and ``spec.backupTemplate`` of a BackupSchedule."""

    from_: TiDBAccessConfig | None = Field(default=None, description="The database to back up (required).")
    backup_type: Literal["full"] = Field(
        default=defaults.DEFAULT_BACKUP_TYPE, description="Only full is supported."
    )
    backup_mode: Literal["snapshot"] | None = Field(
        default=None, description="Only snapshot: log and volume-snapshot backups are BR's."
    )
    tikv_gc_life_time: str = Field(
        default=defaults.DEFAULT_TIKV_GC_LIFE_TIME,
        description="TiKV GC life time during the backup (Go duration).",
    )
    s3: S3StorageProvider | None = Field(default=None, description="S3-compatible storage (required).")
    storage_class_name: str | None = Field(default=None, description="StorageClass of the staging volume.")
    storage_size: str | None = Field(default=None, description="Size of the staging volume, e.g. 10Gi.")
    dumpling: DumplingConfig = Field(default_factory=lambda: DumplingConfig())
    table_filter: list[str] = Field(
        default_factory=lambda: list(defaults.DEFAULT_TABLE_FILTER),
        description="Table-filter rules; default: all but the system schemas.",
    )
    service_account: str = Field(
        default=defaults.DEFAULT_SERVICE_ACCOUNT, description="ServiceAccount of the Job."
    )
    clean_policy: CleanPolicy = Field(
        default=defaults.DEFAULT_CLEAN_POLICY,
        description="What happens to the data when the Backup is deleted.",
    )
    use_kms: bool | None = None
    # Pass-through fields for the backup Job (beside JobPodFields'), shaped as in Kubernetes' core/v1 types.
    clean_option: JSONObject | None = None
    tool_image: str | None = None
    # Accepted so that upstream's YAML applies as it is; they have no effect here and apply warns about
    # each one given (see resources.upstream, which says why per field).
    automount_service_account_token: bool | None = None
    volume_attributes_class_name: str | None = None
    additional_volumes: list[JSONObject] | None = None
    additional_volume_mounts: list[JSONObject] | None = None
    backoff_retry_policy: BackoffRetryPolicy | None = None
    commit_ts: str | None = None
    log_subcommand: Literal["log-start", "log-stop", "log-pause"] | None = None
    log_truncate_until: str | None = None
    log_stop: bool | None = None
    calc_size_level: str | None = None
    federal_volume_backup_phase: Literal["initialize", "execute", "teardown"] | None = None
    resume_gc_schedule: bool | None = None
    volume_backup_init_job_max_active_seconds: int | None = None

    @model_validator(mode="after")
    def _default_table_filter(self) -> BackupSpec:
        # The deprecated dumpling.tableFilter still counts when spec.tableFilter is not given.
        if "table_filter" not in self.model_fields_set or not self.table_filter:
            deprecated = self.dumpling.table_filter
            self.table_filter = list(deprecated) if deprecated else list(defaults.DEFAULT_TABLE_FILTER)
        return self


class Backup(SpecModel):
    """One backup of one database into S3-compatible storage."""

    api_version: ApiVersion = API_VERSION
    kind: Literal["Backup"] = "Backup"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: BackupSpec
    status: BackupStatus = Field(default_factory=lambda: BackupStatus())
