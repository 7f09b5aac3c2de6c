"""An S3 bucket prefix (Amazon S3, Ceph RGW, MinIO and other S3 clones) as backup storage, on boto3."""

from __future__ import annotations

import builtins
import io
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from botocore.exceptions import ClientError

from tibackup.errors import StorageError
from tibackup.storage.base import ObjectInfo, ObjectNotFound, ObjectWriter, check_name, clean_etag
from tibackup.storage.multipart import Buffer, MultipartWriter, PartPool
from tibackup.storage.options import S3Options
from tibackup.storage.s3_client import make_client, multipart_etag
from tibackup.storage.s3_errors import Where, error_code, http_status, translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

    from tibackup.storage.journal import UploadRecord
else:
    S3Client = Any

T = TypeVar("T")
log = logging.getLogger(__name__)
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
PROBE_PREFIX = ".tibackup-write-probe-"


class S3Storage:
    def __init__(self, options: S3Options) -> None:
        self.options = options.resolved()
        self.options.validate()
        self.list_page_size = 1000
        opts = self.options
        self.client = make_client(
            opts,
            connect_timeout=opts.connect_timeout,
            read_timeout=opts.read_timeout,
            attempts=opts.max_attempts,
        )
        self.journal = opts.journal
        self._abort_client: S3Client | None = None
        self.where = Where(
            endpoint=self.client.meta.endpoint_url,
            bucket=self.options.bucket,
            secrets=tuple(s for s in (self.options.secret_key, self.options.session_token) if s),
            write_settings=", ".join(
                f"s3.{field} {value}"
                for field, value in (
                    ("storageClass", self.options.storage_class),
                    ("acl", self.options.acl),
                    ("sse", self.options.sse),
                )
                if value
            ),
            timeouts=f"{opts.read_timeout:g} s, {opts.max_attempts} attempt(s)",
        )
        self._pool: PartPool | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r}, endpoint={self.where.endpoint!r})"

    @property
    def endpoint(self) -> str:
        return self.where.endpoint

    @property
    def url(self) -> str:
        prefix = f"{self.options.prefix}/" if self.options.prefix else ""
        return f"s3://{self.options.bucket}/{prefix}"

    def key(self, name: str) -> str:
        check_name(name)
        return f"{self.options.prefix}/{name}" if self.options.prefix else name

    def _call(self, action: str, key: str | None, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as exc:
            raise translate(exc, self.where, action, key) from exc

    def _write_args(self) -> dict[str, Any]:
        opts = self.options
        args = {
            "StorageClass": opts.storage_class,
            "ACL": opts.acl,
            "ServerSideEncryption": opts.sse,
            "SSEKMSKeyId": opts.sse_kms_key_id,
        }
        return {name: value for name, value in args.items() if value}

    # --- writing -------------------------------------------------------------------------------

    def pool(self) -> PartPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = PartPool(self.options.concurrency)
            return self._pool

    def create(self, name: str) -> ObjectWriter:
        return MultipartWriter(self, self.key(name), self.pool(), self.options.part_size)

    def put(self, name: str, data: bytes) -> None:
        self.put_whole(self.key(name), data)

    def put_whole(self, key: str, data: Buffer) -> str:
        bucket, args = self.options.bucket, self._write_args()
        body = cast(bytes, data)
        response = self._call(
            "writing", key, lambda: self.client.put_object(Bucket=bucket, Key=key, Body=body, **args)
        )
        return clean_etag(response.get("ETag"))

    def put_if_absent(self, name: str, data: bytes) -> str | None:
        """PutObject with ``If-None-Match: *``: None when the key exists (412, or 409 for a conflicting
        write in flight). A server that answers NotImplemented gets a plain PUT: the claim protocol that
        uses this is safe without the condition (``manager/claim.py``)."""
        key, bucket, args = self.key(name), self.options.bucket, self._write_args()
        try:
            response = self.client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", **args)
        except ClientError as exc:
            if http_status(exc) in (409, 412):
                return None
            if error_code(exc) != "NotImplemented":
                raise translate(exc, self.where, "writing", key) from exc
            return self.put_whole(key, data)
        except Exception as exc:
            raise translate(exc, self.where, "writing", key) from exc
        return clean_etag(response.get("ETag"))

    def start_upload(self, key: str) -> str:
        bucket, args = self.options.bucket, self._write_args()
        response = self._call(
            "starting the upload of",
            key,
            lambda: self.client.create_multipart_upload(Bucket=bucket, Key=key, **args),
        )
        upload_id = response["UploadId"]
        if self.journal is not None:
            try:
                self.journal.started(self._record(key, upload_id))
            except BaseException:
                self.abort_upload(key, upload_id)  # unrecorded, it could be lost: never keep it
                raise
        return upload_id

    def _record(self, key: str, upload_id: str, bucket: str | None = None) -> UploadRecord:
        from tibackup.storage.journal import UploadRecord

        return UploadRecord(self.where.endpoint, bucket or self.options.bucket, key, upload_id)

    def upload_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        bucket = self.options.bucket
        response = self._call(
            f"uploading part {number} of",
            key,
            lambda: self.client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=cast(bytes, data)
            ),
        )
        return response["ETag"]

    def complete_upload(self, key: str, upload_id: str, etags: builtins.list[tuple[int, str]]) -> str:
        parts: builtins.list[CompletedPartTypeDef] = [{"PartNumber": n, "ETag": etag} for n, etag in etags]
        bucket = self.options.bucket
        response = self._call(
            "completing the upload of",
            key,
            lambda: self._noted_done(
                key, upload_id, self.client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            ),
        )
        return clean_etag(response.get("ETag")) or multipart_etag([etag for _, etag in etags])

    def _noted_done(self, key: str, upload_id: str, response: T) -> T:
        """A completed upload leaves the journal."""
        if self.journal is not None:
            self.journal.finished(self._record(key, upload_id))
        return response

    def abort_upload(self, key: str, upload_id: str, bucket: str | None = None) -> None:
        """Abort one upload (one already gone counts as aborted) and drop it from the journal."""
        bucket = bucket or self.options.bucket
        client = self.abort_client()
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) != "NoSuchUpload":
                raise translate(exc, self.where, "aborting the upload of", key) from exc
        except Exception as exc:
            raise translate(exc, self.where, "aborting the upload of", key) from exc
        if self.journal is not None:
            self.journal.finished(self._record(key, upload_id, bucket))

    def abort_client(self) -> S3Client:
        """Aborts run while something already failed, often S3 itself: short timeouts, so a frozen
        endpoint delays the end of a run by seconds, not minutes (what is not aborted stays in the
        journal for a later pass)."""
        with self._pool_lock:
            if self._abort_client is None:
                opts = self.options
                self._abort_client = make_client(
                    opts,
                    connect_timeout=min(opts.connect_timeout, 5.0),
                    read_timeout=min(opts.read_timeout, 15.0),
                    attempts=min(opts.max_attempts, 2),
                )
            return self._abort_client

    # --- reading -------------------------------------------------------------------------------

    def read(self, name: str) -> bytes:
        key = self.key(name)
        bucket = self.options.bucket
        return self._call(
            "reading", key, lambda: self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        )

    def open_read(self, name: str) -> BinaryIO:
        key = self.key(name)
        bucket = self.options.bucket
        response = self._call("reading", key, lambda: self.client.get_object(Bucket=bucket, Key=key))
        raw = _BodyReader(response["Body"], lambda exc: translate(exc, self.where, "reading", key))
        return io.BufferedReader(raw, 1024 * 1024)

    def exists(self, name: str) -> bool:
        key = self.key(name)
        try:
            self.client.head_object(Bucket=self.options.bucket, Key=key)
        except ClientError as exc:
            if http_status(exc) == 404 and error_code(exc) != "NoSuchBucket":
                return False
            raise translate(exc, self.where, "checking", key) from exc
        except Exception as exc:
            raise translate(exc, self.where, "checking", key) from exc
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        root = f"{self.options.prefix}/" if self.options.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.options.bucket,
            Prefix=root + prefix,
            PaginationConfig={"PageSize": self.list_page_size},
        )
        iterator = iter(pages)
        while True:
            page = self._call("listing", root + prefix or None, lambda: next(iterator, None))
            if page is None:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][len(root) :], item["Size"], clean_etag(item.get("ETag")))

    # --- deleting ------------------------------------------------------------------------------

    def delete(self, names: builtins.list[str]) -> None:
        keys = [self.key(name) for name in names]
        for start in range(0, len(keys), DELETE_BATCH):
            self._delete_keys(keys[start : start + DELETE_BATCH])

    def _delete_keys(self, keys: builtins.list[str]) -> None:
        if not keys:
            return
        objects: builtins.list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys]
        bucket = self.options.bucket
        response = self._call(
            "deleting",
            keys[0] if len(keys) == 1 else None,
            lambda: self.client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True}),
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"S3 refused to delete {len(errors)} object(s), e.g. s3://{bucket}/{first.get('Key')} "
                f"({first.get('Code')}: {self.where.clean(first.get('Message', ''))}): "
                "check the credentials' delete permission"
            )

    def delete_prefix(self, prefix: str = "") -> int:
        """Delete every object under ``prefix`` and abort unfinished uploads there."""
        batch: builtins.list[str] = []
        deleted = 0
        for info in self.list(prefix):
            batch.append(self.key(info.name))
            if len(batch) == DELETE_BATCH:
                self._delete_keys(batch)
                deleted, batch = deleted + len(batch), []
        self._delete_keys(batch)
        self._abort_uploads_under(prefix)
        return deleted + len(batch)

    def abort_uploads(self, prefix: str = "") -> int:
        """Abort the unfinished multipart uploads under ``prefix`` (a killed writer's leftovers, which
        S3 keeps, and bills, until aborted); return how many."""
        return self._abort_uploads_under(prefix)

    def _abort_uploads_under(self, prefix: str) -> int:
        aborted = 0
        root = f"{self.options.prefix}/" if self.options.prefix else ""
        bucket = self.options.bucket
        pages = self.abort_client().get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=root + prefix
        )
        iterator = iter(pages)
        while True:
            page = self._call("listing uploads under", root + prefix or None, lambda: next(iterator, None))
            if page is None:
                return aborted
            for upload in page.get("Uploads", []):
                self.abort_upload(upload["Key"], upload["UploadId"], bucket)
                aborted += 1

    # --- preflight -----------------------------------------------------------------------------

    def check_writable(self) -> None:
        """HeadBucket, then write and delete a probe object under the prefix; fail fast and clearly."""
        opts = self.options
        client = make_client(
            opts, connect_timeout=min(opts.connect_timeout, 3.0), read_timeout=min(opts.read_timeout, 15.0),
            attempts=min(opts.max_attempts, 2),
        )  # fmt: skip
        bucket = self.options.bucket
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if http_status(exc) == 404:
                raise translate(exc, self.where, "checking", None) from exc
            # HEAD answers carry no error code; a listing says precisely what is wrong.
            self._call("listing", None, lambda: client.list_objects_v2(Bucket=bucket, MaxKeys=1))
            raise translate(exc, self.where, "checking", None) from exc
        except Exception as exc:
            raise translate(exc, self.where, "checking", None) from exc
        key = self.key(PROBE_PREFIX + secrets.token_hex(6))
        args = self._write_args()
        self._call("writing", key, lambda: client.put_object(Bucket=bucket, Key=key, Body=b"", **args))
        self._call("deleting", key, lambda: client.delete_object(Bucket=bucket, Key=key))

    def close(self) -> None:
        """Stop the upload threads (idle ones cost nothing, so this is optional)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class _BodyReader(io.RawIOBase):
    """A GetObject body as a raw stream whose network failures surface as StorageErrors."""

    def __init__(self, body: Any, fail: Callable[[Exception], StorageError]) -> None:
        self._body = body
        self._fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            chunk = self._body.read(len(buffer))
        except Exception as exc:
            raise self._fail(exc) from exc
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


__all__ = ["ObjectNotFound", "S3Storage", "make_client", "multipart_etag"]
