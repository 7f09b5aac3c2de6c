"""``spec.s3.options``: the rclone flags TiDB Operator users write, mapped to what our uploader does.

Only flags with a meaning for tibackup's S3 client are accepted; anything else is an error rather
than silently ignored, so a user never believes an option took effect when it did not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tibackup.errors import InvalidSpecError
from tibackup.resources.duration import parse_duration

# Settings that override the spec; named as the fields of tibackup.storage.options.S3Options.
_OVERRIDES = (
    "region",
    "endpoint",
    "storage_class",
    "acl",
    "sse",
    "sse_kms_key_id",
    "force_path_style",
    "ca_bundle",
    "part_size",
    "concurrency",
    "read_timeout",
    "connect_timeout",
    "max_attempts",
)


@dataclass(frozen=True)
class RcloneS3Options:
    """The effect of ``spec.s3.options``; None means "not given: the spec or the default applies"."""

    # Accepted for compatibility; tibackup's uploader never needs them: it does not compare an MD5
    # after upload (what SSE-KMS breaks in rclone) nor store one in object metadata.
    ignore_checksum: bool = False
    disable_checksum: bool = False
    no_check_bucket: bool = False  # skip the bucket check before the backup
    region: str | None = None
    endpoint: str | None = None
    storage_class: str | None = None
    acl: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    force_path_style: bool | None = None
    ca_bundle: str | None = None  # PEM file of the CA of the endpoint
    part_size: int | None = None  # multipart part size, bytes
    concurrency: int | None = None  # parts uploaded at once
    read_timeout: float | None = None  # rclone --timeout: seconds without an answer before a retry
    connect_timeout: float | None = None  # rclone --contimeout
    max_attempts: int | None = None  # rclone --low-level-retries: tries per call

    def storage_overrides(self) -> dict[str, object]:
        """The given settings, keyed by the field names of ``tibackup.storage.options.S3Options``."""
        return {name: getattr(self, name) for name in _OVERRIDES if getattr(self, name) is not None}


# flag -> (attribute, kind); kind is "flag" (no value), "bool", "str", "int" or "size".
_FLAGS: dict[str, tuple[str, str]] = {
    "--ignore-checksum": ("ignore_checksum", "flag"),
    "--s3-disable-checksum": ("disable_checksum", "flag"),
    "--s3-no-check-bucket": ("no_check_bucket", "flag"),
    "--s3-region": ("region", "str"),
    "--s3-endpoint": ("endpoint", "str"),
    "--s3-storage-class": ("storage_class", "str"),
    "--s3-acl": ("acl", "str"),
    "--s3-server-side-encryption": ("sse", "str"),
    "--s3-sse-kms-key-id": ("sse_kms_key_id", "str"),
    "--s3-force-path-style": ("force_path_style", "bool"),
    "--ca-cert": ("ca_bundle", "str"),
    "--s3-chunk-size": ("part_size", "size"),
    "--s3-upload-concurrency": ("concurrency", "int"),
    "--timeout": ("read_timeout", "duration"),
    "--contimeout": ("connect_timeout", "duration"),
    "--low-level-retries": ("max_attempts", "int"),
}
SUPPORTED_S3_OPTIONS: tuple[str, ...] = tuple(_FLAGS)

_SIZE = re.compile(r"(\d+(?:\.\d+)?)([bkmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_FACTORS = {"": 1024, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}  # rclone: bare = KiB
_MIN_PART, _MAX_PART = 5 * 1024**2, 5 * 1024**3


def parse_s3_options(options: Sequence[str] | None, field: str = "spec.s3.options") -> RcloneS3Options:
    """Parse rclone-style flags: ``--flag``, ``--flag=value`` or ``--flag`` followed by its value."""
    values: dict[str, object] = {}
    items = [str(item).strip() for item in options or ()]
    index = 0
    while index < len(items):
        where = f"{field}[{index}]"
        flag, has_value, value = items[index].partition("=")
        if flag not in _FLAGS:
            raise InvalidSpecError(
                where, f"{items[index]!r} is not an option tibackup supports; use one of {', '.join(_FLAGS)}"
            )
        attribute, kind = _FLAGS[flag]
        if kind in ("str", "int", "size", "duration") and not has_value:
            if index + 1 >= len(items):
                raise InvalidSpecError(where, f"{flag} needs a value: write {flag}=VALUE")
            index += 1
            value = items[index]
        values[attribute] = _convert(flag, kind, value, where)
        index += 1
    return RcloneS3Options(**values)  # type: ignore[arg-type]


def _convert(flag: str, kind: str, value: str, where: str) -> object:
    if kind == "flag":
        if value not in ("", "true"):
            raise InvalidSpecError(where, f"{flag} takes no value")
        return True
    if kind == "bool":
        if value.lower() in ("", "true"):
            return True
        if value.lower() == "false":
            return False
        raise InvalidSpecError(where, f"{flag} takes true or false, not {value!r}")
    if kind == "int":
        if not value.isdigit() or int(value) < 1:
            raise InvalidSpecError(where, f"{flag} needs a positive whole number, not {value!r}")
        return int(value)
    if kind == "size":
        match = _SIZE.fullmatch(value)
        if match is None:
            raise InvalidSpecError(where, f"{flag} needs a size such as 5M or 64Mi, not {value!r}")
        size = int(float(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()])
        if not _MIN_PART <= size <= _MAX_PART:
            raise InvalidSpecError(where, f"{flag} must be from 5M to 5G (the S3 limits of a part)")
        return size
    if kind == "duration":
        seconds = parse_duration(value, where).total_seconds()
        if seconds <= 0:
            raise InvalidSpecError(where, f"{flag} needs a duration above 0, such as 60s or 5m")
        return seconds
    if not value:
        raise InvalidSpecError(where, f"{flag} needs a value")
    return value
