"""Where and how to write into S3-compatible storage: the ``s3`` block of a Backup, or ``--s3.*`` flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tibackup.errors import StorageError

if TYPE_CHECKING:  # annotation only: a dump to local disk never loads the journal (start-up)
    from tibackup.storage.journal import UploadJournal

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3: every part but the last must be at least this big
MAX_PART_SIZE = 5 * 1024 * MiB  # S3: no part may be bigger
SSE_VALUES = ("AES256", "aws:kms")
DEFAULT_CONCURRENCY = 4
# A call that gets no answer for READ_TIMEOUT seconds is tried again, MAX_ATTEMPTS times in all (with
# botocore's short backoff): a frozen endpoint is named within about 3 × 60 s, never left to hang.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
MAX_ATTEMPTS = 3


@dataclass
class S3Options:
    """The S3 bucket, prefix, endpoint, credentials and upload settings."""

    bucket: str = ""
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    provider: str = "aws"
    storage_class: str | None = None
    acl: str | None = None
    sse: str | None = None  # "AES256" or "aws:kms"
    sse_kms_key_id: str | None = None
    force_path_style: bool | None = None  # None: path style for non-aws providers or a custom endpoint
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)  # None: boto3's credential chain
    ca_bundle: str | None = None  # a path to a PEM file of CA certificates for the endpoint
    part_size: int | None = None  # fixed multipart part size; None: the growing schedule
    concurrency: int = DEFAULT_CONCURRENCY  # parts uploaded at once
    connect_timeout: float = CONNECT_TIMEOUT  # seconds to open a connection
    read_timeout: float = READ_TIMEOUT  # seconds without an answer (or send progress) before a retry
    max_attempts: int = MAX_ATTEMPTS  # tries per call, the first included
    # Where started multipart uploads are noted until completed or aborted (storage.journal).
    journal: UploadJournal | None = field(default=None, repr=False, compare=False)

    @property
    def path_style(self) -> bool:
        if self.force_path_style is not None:
            return self.force_path_style
        return self.provider.lower() != "aws" or bool(self.endpoint)

    def resolved(self) -> S3Options:
        """A copy with the reference system's provider defaults applied (idempotent)."""
        provider = (self.provider or "aws").lower()
        changes: dict[str, object] = {"provider": provider, "prefix": self.prefix.strip("/")}
        if provider == "aws":
            changes["storage_class"] = self.storage_class or "STANDARD_IA"
            changes["acl"] = self.acl or "private"
        if self.endpoint and "://" not in self.endpoint:
            # As rclone under the reference system: Ceph gateways are plain http, the rest https.
            changes["endpoint"] = ("http://" if provider == "ceph" else "https://") + self.endpoint
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        """Reject settings that can never work, naming the field and the fix."""
        if not self.bucket:
            raise StorageError("no S3 bucket given: set s3.bucket or use -o s3://bucket/prefix")
        if "/" in self.bucket:
            raise StorageError(f"invalid S3 bucket name '{self.bucket}': put the path in s3.prefix")
        if self.sse and self.sse not in SSE_VALUES:
            raise StorageError(f"unsupported s3.sse '{self.sse}': use AES256 or aws:kms")
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise StorageError("s3 SSE KMS key id given without sse=aws:kms: set s3.sse to aws:kms")
        if self.endpoint:
            from urllib.parse import urlsplit  # here: only S3 with an endpoint parses URLs (start-up)

            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise StorageError(
                    f"invalid s3.endpoint '{self.endpoint}': use http://host:port or https://host"
                )
        if (self.access_key is None) != (self.secret_key is None):
            raise StorageError("only one of access_key and secret_key is set: the Secret needs both keys")
        if self.part_size is not None and not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise StorageError(f"S3 part size {self.part_size} is out of range: use 5 MiB to 5 GiB")
        if self.concurrency < 1:
            raise StorageError(f"S3 upload concurrency {self.concurrency} must be at least 1")
        if not (self.connect_timeout > 0 and self.read_timeout > 0):
            raise StorageError("S3 timeouts must be more than 0 seconds: fix the S3 timeout settings")
        if self.max_attempts < 1:
            raise StorageError(f"S3 attempts {self.max_attempts} must be at least 1")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → ``("bucket", "some/prefix")``."""
    if not url.startswith("s3://"):
        raise StorageError(f"'{url}' is not an S3 URL: use s3://bucket/prefix")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"no bucket in '{url}': use s3://bucket/prefix")
    return bucket, prefix.strip("/")
