"""``spec.s3.options``: the rclone flags TiDB Operator users write, mapped to what our uploader does.

Only flags with a meaning for tibackup's S3 client are accepted; anything else is an error rather
than silently ignored, so a user never believes an option took effect when it did not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tibackup.errors import InvalidSpecError


@dataclass(frozen=True)
class S3Options:
    """The effect of ``spec.s3.options``; None means "not given, use the spec or the default"."""

    ignore_checksum: bool = False  # do not compare MD5/ETag after upload (needed with SSE-KMS)
    disable_checksum: bool = False  # do not store an MD5 of each object in its metadata
    no_check_bucket: bool = False  # do not check or create the bucket before uploading
    insecure_skip_verify: bool = False  # do not verify the endpoint's TLS certificate
    ca_cert: str | None = None  # PEM bundle of the CA of the endpoint
    force_path_style: bool | None = None
    region: str | None = None
    endpoint: str | None = None
    storage_class: str | None = None
    acl: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    upload_concurrency: int | None = None  # parts of one file uploaded in parallel
    chunk_size: int | None = None  # multipart part size, bytes
    transfers: int | None = None  # files uploaded in parallel
    given: tuple[str, ...] = field(default=())


# flag -> (attribute, kind); kind is "flag" (no value), "bool", "str", "int" or "size".
_FLAGS: dict[str, tuple[str, str]] = {
    "--ignore-checksum": ("ignore_checksum", "flag"),
    "--s3-disable-checksum": ("disable_checksum", "flag"),
    "--s3-no-check-bucket": ("no_check_bucket", "flag"),
    "--no-check-certificate": ("insecure_skip_verify", "flag"),
    "--ca-cert": ("ca_cert", "str"),
    "--s3-force-path-style": ("force_path_style", "bool"),
    "--s3-region": ("region", "str"),
    "--s3-endpoint": ("endpoint", "str"),
    "--s3-storage-class": ("storage_class", "str"),
    "--s3-acl": ("acl", "str"),
    "--s3-server-side-encryption": ("sse", "str"),
    "--s3-sse-kms-key-id": ("sse_kms_key_id", "str"),
    "--s3-upload-concurrency": ("upload_concurrency", "int"),
    "--s3-chunk-size": ("chunk_size", "size"),
    "--transfers": ("transfers", "int"),
}
SUPPORTED_S3_OPTIONS: tuple[str, ...] = tuple(_FLAGS)

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_FACTORS = {"": 1024, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}  # rclone: bare = KiB


def parse_s3_options(options: Sequence[str] | None, field_name: str = "spec.s3.options") -> S3Options:
    """Parse rclone-style flags: ``--flag``, ``--flag=value`` or ``--flag`` followed by its value."""
    values: dict[str, object] = {}
    given: list[str] = []
    items = list(options or ())
    index = 0
    while index < len(items):
        where = f"{field_name}[{index}]"
        item = str(items[index]).strip()
        flag, has_value, value = item.partition("=")
        if flag not in _FLAGS:
            raise InvalidSpecError(
                where, f"{item!r} is not an option tibackup supports; use one of {', '.join(_FLAGS)}"
            )
        attribute, kind = _FLAGS[flag]
        if kind in ("str", "int", "size") and not has_value:
            if index + 1 >= len(items):
                raise InvalidSpecError(where, f"{flag} needs a value: write {flag}=VALUE")
            index += 1
            value = str(items[index]).strip()
        values[attribute] = _convert(flag, kind, value, where)
        given.append(flag)
        index += 1
    return S3Options(given=tuple(given), **values)  # type: ignore[arg-type]


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
        if size < 5 * 1024**2:
            raise InvalidSpecError(where, f"{flag} must be at least 5M (the S3 minimum part size)")
        return size
    if not value:
        raise InvalidSpecError(where, f"{flag} needs a value")
    return value
