"""Checks of a Backup spec that the schema cannot express: a failure means the Backup can never work.

The backup manager turns the InvalidSpecError into phase ``Invalid`` with the message as the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

from tibackup.errors import InvalidSpecError
from tibackup.resources import defaults
from tibackup.resources.backup import S3_PROVIDERS, Backup, BackupSpec
from tibackup.resources.duration import parse_positive_duration
from tibackup.resources.meta import ObjectMeta
from tibackup.resources.s3options import parse_s3_options

# Kubernetes' own rules (apimachinery validation): object names are DNS-1123 subdomains of at most 253
# characters, namespaces DNS-1123 labels of at most 63. Names and namespaces become folder names
# (staging), so nothing else may ever pass: no '/', no '..', no upper case, no absolute path.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_QUANTITY = re.compile(r"\d+(\.\d+)?([KMGTPE]i?|[kmnu]|[eE]\d+)?")
_BUCKET = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,253}[a-zA-Z0-9]")
_SSE = ("AES256", "aws:kms")
_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
# Dumpling flags that the spec decides; in dumpling.options they would contradict it.
_DUMPLING_OWNED = {
    "-o": "the output location comes from spec.s3",
    "--output": "the output location comes from spec.s3",
    "-h": "the host comes from spec.from.host",
    "--host": "the host comes from spec.from.host",
    "-P": "the port comes from spec.from.port",
    "--port": "the port comes from spec.from.port",
    "-u": "the user comes from spec.from.user",
    "--user": "the user comes from spec.from.user",
    "-p": "the password comes from the Secret named in spec.from.secretName",
    "--password": "the password comes from the Secret named in spec.from.secretName",
}


def validate_name(name: str, field: str = "metadata.name") -> None:
    """A Kubernetes object name (DNS-1123 subdomain: Backups, BackupSchedules, Secrets)."""
    if not name:
        raise InvalidSpecError(field, "required; give the resource a name")
    if len(name) > DNS1123_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.fullmatch(name):
        raise InvalidSpecError(
            field,
            f"{_shown(name)} is not a valid name: use at most {DNS1123_SUBDOMAIN_MAX} lower-case letters, "
            "digits, '-' and '.', starting and ending with a letter or digit",
        )


def validate_namespace(namespace: str, field: str = "metadata.namespace") -> None:
    """A Kubernetes namespace (DNS-1123 label)."""
    if len(namespace) > DNS1123_LABEL_MAX or not _DNS_LABEL.fullmatch(namespace):
        raise InvalidSpecError(
            field,
            f"{_shown(namespace)} is not a valid namespace: use at most {DNS1123_LABEL_MAX} lower-case "
            "letters, digits and '-', starting and ending with a letter or digit",
        )


def validate_meta(meta: ObjectMeta) -> None:
    """The name and (when given) the namespace of a resource."""
    validate_name(meta.name)
    if meta.namespace is not None:
        validate_namespace(meta.namespace)


def object_dir(root: Path, namespace: str, name: str) -> Path:
    """``root/<namespace>/<name>``, only for a valid namespace and name: no path escapes ``root``."""
    validate_namespace(namespace)
    validate_name(name)
    return root / namespace / name


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 70 else f"{text[:60]!r}… ({len(text)} characters)"


def validate_backup(backup: Backup) -> None:
    """Raise InvalidSpecError naming the first field that makes this Backup unable to ever succeed."""
    validate_meta(backup.metadata)
    validate_backup_spec(backup.spec, "spec")


def validate_backup_spec(spec: BackupSpec, prefix: str = "spec") -> None:
    """The checks of ``validate_backup`` on a spec alone (``prefix`` names its place, e.g. a template)."""
    source = spec.from_
    if source is None:
        raise InvalidSpecError(f"{prefix}.from", "required; name the database: host, port, user, secretName")
    if not source.host:
        raise InvalidSpecError(f"{prefix}.from.host", "required; set the address of the TiDB/MySQL server")
    if not source.secret_name:
        raise InvalidSpecError(
            f"{prefix}.from.secretName",
            "required; name a Secret holding the password under the key 'password'",
        )
    # Secret names become folder names (the TLS volume) and Job references: Kubernetes names only.
    validate_name(source.secret_name, f"{prefix}.from.secretName")
    if source.tls_client_secret_name:
        validate_name(source.tls_client_secret_name, f"{prefix}.from.tlsClientSecretName")
    if spec.s3 is not None and spec.s3.secret_name:
        validate_name(spec.s3.secret_name, f"{prefix}.s3.secretName")
    _validate_s3(spec, prefix)
    parse_positive_duration(spec.tikv_gc_life_time, f"{prefix}.tikvGCLifeTime")
    if spec.storage_size is not None and not _QUANTITY.fullmatch(spec.storage_size):
        raise InvalidSpecError(
            f"{prefix}.storageSize", f"{spec.storage_size!r} is not a size; write it like 10Gi or 500Mi"
        )
    if spec.use_kms:
        raise InvalidSpecError(
            f"{prefix}.useKMS", "decrypting Secrets with KMS is not supported by tibackup; remove it"
        )
    for index, rule in enumerate(spec.table_filter):
        if not rule.strip():
            raise InvalidSpecError(f"{prefix}.tableFilter[{index}]", "empty rule; remove it")
    for index, option in enumerate(spec.dumpling.options):
        flag = option.strip().split("=", 1)[0]
        if flag in _DUMPLING_OWNED:
            raise InvalidSpecError(
                f"{prefix}.dumpling.options[{index}]", f"{flag} cannot be set here: {_DUMPLING_OWNED[flag]}"
            )


def _validate_s3(spec: BackupSpec, prefix: str) -> None:
    s3 = spec.s3
    where = f"{prefix}.s3"
    if s3 is None:
        raise InvalidSpecError(where, "required; tibackup stores backups in S3-compatible storage")
    if not s3.bucket:
        raise InvalidSpecError(f"{where}.bucket", "required; name the bucket that receives the backups")
    if "/" in s3.bucket:
        raise InvalidSpecError(
            f"{where}.bucket", f"{s3.bucket!r} contains '/': put the folder part in {where}.prefix"
        )
    if not _BUCKET.fullmatch(s3.bucket):
        raise InvalidSpecError(
            f"{where}.bucket", f"{s3.bucket!r} is not a valid bucket name (3-255 letters, digits, '.', '-')"
        )
    generic = s3.provider not in S3_PROVIDERS  # a provider rclone has and tibackup does not know
    if (s3.provider in defaults.PROVIDERS_NEEDING_ENDPOINT or generic) and not s3.endpoint:
        raise InvalidSpecError(
            f"{where}.endpoint", f"required for provider {s3.provider}; set the URL of the S3 service"
        )
    if s3.endpoint and "://" in s3.endpoint and not s3.endpoint.startswith(("http://", "https://")):
        raise InvalidSpecError(f"{where}.endpoint", f"{s3.endpoint!r} must start with http:// or https://")
    if s3.sse and s3.sse not in _SSE:
        raise InvalidSpecError(f"{where}.sse", f"{s3.sse!r} is not allowed; use AES256 or aws:kms")
    if s3.acl and s3.acl not in _ACLS:
        raise InvalidSpecError(
            f"{where}.acl", f"{s3.acl!r} is not a canned ACL; use one of {'/'.join(_ACLS)}"
        )
    options = parse_s3_options(s3.options, f"{where}.options")
    if options.sse_kms_key_id and (options.sse or s3.sse) != "aws:kms":
        raise InvalidSpecError(f"{where}.sse", "a KMS key id is given in options: set sse to aws:kms")
