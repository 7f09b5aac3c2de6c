"""Turn boto3/botocore failures into one-line StorageErrors that name the cause and the fix.

Messages never carry a secret: the server's own message is scrubbed of the secret key and token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)

from tibackup.errors import StorageError
from tibackup.storage.base import ObjectNotFound

_NETWORK_REASONS = (
    ("connection refused", "connection refused"),
    ("name or service not known", "unknown host name"),
    ("temporary failure in name resolution", "host name does not resolve"),
    ("nodename nor servname", "unknown host name"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("timed out", "timed out"),
    ("connection reset", "connection reset by the server"),
)


_WRONG_REGION = ("AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException")


@dataclass(frozen=True)
class Where:
    """What the failed call was about, for the message."""

    endpoint: str
    bucket: str
    secrets: tuple[str, ...] = ()
    write_settings: str = ""  # e.g. "s3.storageClass STANDARD_IA, s3.acl private": what a provider may refuse
    timeouts: str = ""  # e.g. "60 s, 3 attempts": how long a stalled call was waited for

    def target(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key else f"bucket '{self.bucket}'"

    def clean(self, text: str) -> str:
        """One line, without any secret the server may have echoed."""
        text = re.sub(r"\s+", " ", text).strip()
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def _network_reason(exc: BaseException) -> str:
    """'connection refused' and the like, from botocore's wrapped urllib3 error."""
    inner = getattr(exc, "kwargs", {}).get("error")
    text = f"{exc} {inner or ''}".lower()
    for needle, reason in _NETWORK_REASONS:
        if needle in text:
            return reason
    return exc.__class__.__name__


def translate(exc: Exception, where: Where, action: str, key: str | None = None) -> StorageError:
    """``action`` is a verb phrase such as 'writing' or 'listing'."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, where, action, key)
    if isinstance(exc, SSLError):
        return StorageError(
            f"TLS verification failed for S3 endpoint {where.endpoint}: "
            "set s3 ca_bundle to the CA file that signed its certificate, or fix s3.endpoint"
        )
    if isinstance(exc, ConnectTimeoutError):
        return StorageError(
            f"cannot reach S3 endpoint {where.endpoint}: connection timed out; "
            "check s3.endpoint and the network path to it"
        )
    if isinstance(exc, EndpointConnectionError):
        return StorageError(
            f"cannot reach S3 endpoint {where.endpoint}: {_network_reason(exc)}; check s3.endpoint"
        )
    if isinstance(exc, ReadTimeoutError) or (
        isinstance(exc, BotoCoreError) and _network_reason(exc) == "timed out"
    ):
        waited = f" (no answer within {where.timeouts})" if where.timeouts else ""
        return StorageError(
            f"S3 endpoint {where.endpoint} stopped answering while {action} {where.target(key)}{waited}: "
            "check the S3 server's health and try again, or raise the S3 timeout if it is only slow"
        )
    if isinstance(exc, NoCredentialsError):
        return StorageError(
            "no S3 credentials found: set s3.secretName (keys access_key, secret_key) "
            "or give the backup an IAM role"
        )
    if isinstance(exc, PartialCredentialsError | CredentialRetrievalError):
        return StorageError(
            f"S3 credentials are incomplete ({where.clean(str(exc))}): check the Secret or the IAM role setup"
        )
    if isinstance(exc, ParamValidationError):
        return StorageError(f"invalid S3 request while {action} {where.target(key)}: {where.clean(str(exc))}")
    if isinstance(exc, BotoCoreError):
        reason = _network_reason(exc)
        return StorageError(
            f"S3 request to {where.endpoint} failed while {action} {where.target(key)}: "
            f"{where.clean(reason if reason != exc.__class__.__name__ else str(exc))}; try again"
        )
    if isinstance(exc, OSError):
        return StorageError(
            f"network error talking to S3 endpoint {where.endpoint} while {action} "
            f"{where.target(key)}: {where.clean(str(exc))}; try again"
        )
    raise exc  # not a storage failure: a bug, let it surface


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _client_error(exc: ClientError, where: Where, action: str, key: str | None) -> StorageError:
    code = error_code(exc)
    status = http_status(exc)
    message = where.clean(str(exc.response.get("Error", {}).get("Message") or ""))
    what = where.target(key)
    detail = f"{code}: {message}" if message else code
    if code == "NoSuchBucket" or (status == 404 and key is None and code in ("404", "NotFound")):
        return StorageError(
            f"bucket '{where.bucket}' does not exist at {where.endpoint}: create it or fix s3.bucket"
        )
    if code in ("NoSuchKey", "404", "NotFound") and key is not None:
        return ObjectNotFound(f"{what} does not exist")
    if code == "SignatureDoesNotMatch":
        return StorageError(
            "S3 rejected the credentials (SignatureDoesNotMatch): check secret_key in the Secret"
        )
    if code == "InvalidAccessKeyId":
        return StorageError(
            "S3 does not know the access key (InvalidAccessKeyId): check access_key in the Secret"
        )
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return StorageError(
            f"S3 rejected the session credentials ({code}): refresh them or check the IAM role"
        )
    if code in _WRONG_REGION or (status in (301, 307) and code in ("301", "307")):
        return StorageError(
            f"bucket '{where.bucket}' is in another region ({code}): set s3.region to the bucket's region"
        )
    if code == "InvalidStorageClass":
        return StorageError(f"S3 refused the storage class ({detail}): fix s3.storageClass")
    if code == "AccessControlListNotSupported":
        return StorageError(f"bucket '{where.bucket}' does not accept ACLs ({code}): leave s3.acl empty")
    if code.startswith("KMS") or "kms" in message.lower():
        return StorageError(
            f"S3 server-side encryption failed while {action} {what} ({detail}): "
            "check s3.sse and the KMS key id and its permissions"
        )
    if code in ("AccessDenied", "AllAccessDisabled", "403", "Forbidden") or status == 403:
        return StorageError(
            f"S3 denied access while {action} {what} ({code or status}): "
            "grant the credentials access to the bucket and prefix, or fix the Secret"
        )
    if code in ("InvalidArgument", "InvalidRequest", "NotImplemented", "InvalidEncryptionAlgorithmError"):
        settings = where.write_settings or "s3.sse, s3.acl and s3.storageClass"
        return StorageError(
            f"S3 refused {action} {what} ({detail}): check that this provider supports {settings}"
        )
    if code in ("QuotaExceeded", "XMinioStorageFull", "StorageFull") or status == 507:
        return StorageError(
            f"S3 storage is full while {action} {what} ({detail}): free space or raise the quota"
        )
    if status >= 500 or code in ("SlowDown", "InternalError", "ServiceUnavailable"):
        return StorageError(
            f"S3 endpoint {where.endpoint} kept failing while {action} {what} ({detail}) "
            "after retries: try again later, or check the server"
        )
    return StorageError(f"S3 refused {action} {what} ({detail or status}) at {where.endpoint}")
