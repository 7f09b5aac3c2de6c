"""Pure parts of the S3 storage: the part-size schedule, the multipart writer on a fake target,
provider defaults and error translation. No server."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tibackup.errors import StorageError
from tibackup.storage import ObjectNotFound, S3Options, parse_s3_url, part_size_for
from tibackup.storage.multipart import (
    LARGEST_PART_SIZE,
    MAX_PARTS,
    Buffer,
    MultipartWriter,
    PartPool,
)
from tibackup.storage.s3_errors import Where, translate

MiB = 1024 * 1024
GiB = 1024 * MiB


def test_part_schedule_reaches_one_terabyte_within_s3_limits() -> None:
    sizes = [part_size_for(n) for n in range(1, MAX_PARTS + 1)]
    assert sum(sizes) >= 10**12  # one object can hold at least 1 TB
    assert sum(sizes) >= 1024 * GiB  # and 1 TiB
    assert max(sizes) <= 5 * GiB  # S3's largest part
    assert max(sizes) == LARGEST_PART_SIZE  # memory stays small: 128 MiB at most
    assert min(sizes) >= 5 * MiB  # S3's smallest non-final part
    assert sizes[0] == 8 * MiB  # small objects use small parts
    assert sizes == sorted(sizes)
    with pytest.raises(ValueError):
        part_size_for(0)
    with pytest.raises(ValueError):
        part_size_for(MAX_PARTS + 1)


class FakeTarget:
    """Records calls; optionally slow or failing, to check concurrency and abort."""

    def __init__(self, delay: float = 0.0, fail_part: int | None = None) -> None:
        self.delay = delay
        self.fail_part = fail_part
        self.calls: list[tuple[str, object]] = []
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def put_whole(self, key: str, data: Buffer) -> None:
        self.calls.append(("put", len(data)))
        self.objects[key] = bytes(data)

    def start_upload(self, key: str) -> str:
        self.calls.append(("start", key))
        return "upload-1"

    def upload_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if number == self.fail_part:
                raise StorageError(f"part {number} failed")
            self.parts[number] = bytes(data)
            return f"etag-{number}"
        finally:
            with self.lock:
                self.in_flight -= 1

    def complete_upload(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> None:
        self.calls.append(("complete", etags))
        self.objects[key] = b"".join(self.parts[n] for n, _ in etags)

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.calls.append(("abort", upload_id))


def test_small_object_is_one_put_even_at_exactly_one_part() -> None:
    target = FakeTarget()
    writer = MultipartWriter(target, "k", PartPool(2), fixed_part_size=5 * MiB)
    writer.write(b"a" * (5 * MiB))  # exactly one part: no multipart upload needed
    writer.close()
    assert target.calls == [("put", 5 * MiB)]


def test_parts_in_order_and_bounded_in_flight() -> None:
    target = FakeTarget(delay=0.05)
    pool = PartPool(2)
    data = bytes(range(256)) * (23 * MiB // 256) + b"tail"
    writer = MultipartWriter(target, "k", pool, fixed_part_size=5 * MiB)
    for start in range(0, len(data), 777_777):
        writer.write(data[start : start + 777_777])
    writer.close()
    assert target.objects["k"] == data
    complete = next(c for c in target.calls if c[0] == "complete")
    assert complete[1] == [(n, f"etag-{n}") for n in range(1, 6)]
    assert target.max_in_flight <= 2


def test_failed_part_aborts_the_upload() -> None:
    target = FakeTarget(fail_part=2)
    writer = MultipartWriter(target, "k", PartPool(2), fixed_part_size=5 * MiB)
    with pytest.raises(StorageError, match="part 2 failed"):
        writer.write(b"x" * (16 * MiB))
        writer.close()
    assert ("abort", "upload-1") in target.calls
    assert "k" not in target.objects
    writer.abort()  # a second abort is harmless
    assert target.calls.count(("abort", "upload-1")) == 1


def test_write_after_close_is_refused() -> None:
    writer = MultipartWriter(FakeTarget(), "k", PartPool(1))
    writer.close()
    with pytest.raises(StorageError, match="after it was closed"):
        writer.write(b"x")


def test_provider_defaults() -> None:
    aws = S3Options(bucket="b").resolved()
    assert (aws.storage_class, aws.acl, aws.path_style) == ("STANDARD_IA", "private", False)
    assert S3Options(bucket="b", endpoint="http://x:1").resolved().path_style
    ceph = S3Options(bucket="b", provider="ceph", endpoint="rgw.local:7480").resolved()
    assert (ceph.endpoint, ceph.storage_class, ceph.acl, ceph.path_style) == (
        "http://rgw.local:7480",
        None,
        None,
        True,
    )
    assert S3Options(provider="minio", endpoint="minio:9000").resolved().endpoint == "https://minio:9000"
    kept = S3Options(bucket="b", storage_class="STANDARD", acl="bucket-owner-full-control").resolved()
    assert (kept.storage_class, kept.acl) == ("STANDARD", "bucket-owner-full-control")
    assert S3Options(provider="other", force_path_style=False).resolved().path_style is False


def test_options_validation() -> None:
    for bad, match in [
        (S3Options(), "no S3 bucket"),
        (S3Options(bucket="b", sse="rot13"), "unsupported s3.sse"),
        (S3Options(bucket="b", sse_kms_key_id="k"), "without sse=aws:kms"),
        (S3Options(bucket="b", access_key="a"), "only one of access_key"),
        (S3Options(bucket="b", part_size=1024), "part size"),
        (S3Options(bucket="b", endpoint="ftp://x"), "invalid s3.endpoint"),
    ]:
        with pytest.raises(StorageError, match=match):
            bad.resolved().validate()


def test_repr_hides_secrets() -> None:
    text = repr(S3Options(bucket="b", access_key="AKIAEXAMPLE", secret_key="s3cr3t", session_token="tok"))
    assert "s3cr3t" not in text and "tok" not in text and "AKIAEXAMPLE" not in text
    assert "bucket='b'" in text


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(StorageError):
        parse_s3_url("s3:///x")


def client_error(code: str, status: int, message: str = "") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


WHERE = Where("http://s3.example:9000", "bkt", secrets=("TOPSECRET",))


@pytest.mark.parametrize(
    ("exc", "key", "expected"),
    [
        (client_error("NoSuchBucket", 404), None, "bucket 'bkt' does not exist at http://s3.example:9000"),
        (client_error("404", 404), None, "does not exist"),
        (client_error("NoSuchKey", 404), "a/b", "s3://bkt/a/b does not exist"),
        (client_error("SignatureDoesNotMatch", 403, "bad sig TOPSECRET"), "k", "check secret_key"),
        (client_error("InvalidAccessKeyId", 403), "k", "check access_key"),
        (client_error("AccessDenied", 403, "no"), "k", "S3 denied access while writing s3://bkt/k"),
        (client_error("InvalidStorageClass", 400), "k", "fix s3.storageClass"),
        (client_error("AuthorizationHeaderMalformed", 400), None, "set s3.region"),
        (client_error("SlowDown", 503, "line1\nline2 TOPSECRET"), "k", "after retries"),
        (EndpointConnectionError(endpoint_url="http://s3.example:9000/bkt"), None, "cannot reach S3"),
    ],
)
def test_error_translation(exc: Exception, key: str | None, expected: str) -> None:
    error = translate(exc, WHERE, "writing", key)
    text = str(error)
    assert expected in text
    assert "\n" not in text
    assert "TOPSECRET" not in text
    if expected.endswith("does not exist") and key:
        assert isinstance(error, ObjectNotFound)
