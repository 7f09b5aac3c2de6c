"""The boto3 client of an S3 bucket as tibackup talks to it (signature, addressing, retries, timeouts,
checksums; the quirks of S3 clones), and S3's multipart ETag rule. ``s3.py`` is the storage on top."""

from __future__ import annotations

import base64
import builtins
import hashlib
import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from tibackup.errors import StorageError
from tibackup.storage.base import clean_etag
from tibackup.storage.options import S3Options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any


def make_client(
    options: S3Options, *, connect_timeout: float, read_timeout: float, attempts: int
) -> S3Client:
    """A client for ``options`` (already resolved and validated)."""
    if options.ca_bundle and not os.path.isfile(options.ca_bundle):
        raise StorageError(f"CA bundle {options.ca_bundle} does not exist: fix s3 ca_bundle")
    aws = options.provider == "aws"
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if options.path_style else "virtual"},
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=options.concurrency + 10,
        tcp_keepalive=True,
        # S3 clones often reject the CRC trailers newer SDKs send by default; AWS takes either.
        request_checksum_calculation="when_supported" if aws else "when_required",
        response_checksum_validation="when_supported" if aws else "when_required",
    )
    region = options.region or (None if aws else "us-east-1")
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint or None,
        region_name=region,
        aws_access_key_id=options.access_key,
        aws_secret_access_key=options.secret_key,
        aws_session_token=options.session_token if options.access_key else None,
        # An explicit bundle wins over AWS_CA_BUNDLE; None leaves botocore's own lookup in charge.
        verify=options.ca_bundle or None,
        config=config,
    )
    client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
    return client


def _add_content_md5(request: Any, **_: Any) -> None:
    """Many S3 clones still require Content-MD5 on DeleteObjects, which botocore no longer sends."""
    body = request.body
    if "Content-MD5" in request.headers or not isinstance(body, bytes | bytearray):
        return
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def multipart_etag(part_etags: builtins.list[str]) -> str:
    """The ETag S3 gives a multipart object: the MD5 of its parts' binary MD5s, then ``-<parts>``
    (for a CompleteMultipartUpload answer without one); '' where part ETags are no MD5s (SSE-KMS)."""
    try:
        digests = b"".join(bytes.fromhex(clean_etag(etag)) for etag in part_etags)
    except ValueError:
        return ""
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(part_etags)}"


__all__ = ["make_client", "multipart_etag"]
