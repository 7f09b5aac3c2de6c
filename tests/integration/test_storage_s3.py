"""S3Storage against the real S3 server of the session fixtures (SeaweedFS, or Ceph RGW)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tibackup.errors import StorageError
from tibackup.storage import ObjectNotFound, S3Options, S3Storage, open_storage
from tibackup.storage import s3 as s3_module
from tibackup.storage.journal import FileJournal

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def options(server: Any, bucket: str, **overrides: Any) -> S3Options:
    settings: dict[str, Any] = {
        "bucket": bucket,
        "prefix": "backups/one",
        "endpoint": server.endpoint,
        "region": server.region,
        "provider": "other",
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    settings.update(overrides)
    return S3Options(**settings)


class Recorder:
    """Every S3 operation the storage's client sends, with its parameters (botocore event hooks)."""

    def __init__(self, storage: S3Storage) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        storage.client.meta.events.register("provide-client-params.s3", self._record)
        storage.abort_client().meta.events.register("provide-client-params.s3", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


def test_small_object_is_a_single_put(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket))
    recorder = Recorder(storage)
    with storage.create("db.t.000000001.sql") as writer:
        writer.write(b"INSERT INTO `t` VALUES\n")
        writer.write(b"(1);\n")
    assert recorder.names() == ["PutObject"]
    assert s3_server.get_bytes(bucket, "backups/one/db.t.000000001.sql") == b"INSERT INTO `t` VALUES\n(1);\n"
    assert storage.read("db.t.000000001.sql") == b"INSERT INTO `t` VALUES\n(1);\n"
    assert storage.exists("db.t.000000001.sql")
    assert not storage.exists("missing")
    with pytest.raises(ObjectNotFound, match="does not exist"):
        storage.read("missing")


def test_multipart_object_reads_back_identical(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket, part_size=5 * MiB, concurrency=2))
    recorder = Recorder(storage)
    data = os.urandom(12 * MiB + 12345)
    with storage.create("big.sql") as writer:
        for start in range(0, len(data), 1_000_003):
            writer.write(memoryview(data)[start : start + 1_000_003])
    names = recorder.names()
    assert names[0] == "CreateMultipartUpload"
    assert names.count("UploadPart") == 3
    assert names[-1] == "CompleteMultipartUpload"
    assert storage.read("big.sql") == data
    with storage.open_read("big.sql") as body:
        assert body.read(100) == data[:100]
        assert body.read() == data[100:]
    assert s3_server.list_multipart_uploads(bucket) == []


def server_accepts(s3_server: Any, bucket: str, **params: str) -> bool:
    try:
        s3_server.client(retries={"max_attempts": 1}).put_object(
            Bucket=bucket, Key="probe", Body=b"x", **params
        )
    except Exception:
        return False
    return True


def test_storage_class_and_acl_reach_the_server(s3_server: Any, bucket: str) -> None:
    # Ceph RGW knows only the classes its placement defines (STANDARD by default); SeaweedFS takes any.
    storage_class = (
        "STANDARD_IA" if server_accepts(s3_server, bucket, StorageClass="STANDARD_IA") else "STANDARD"
    )
    storage = S3Storage(
        options(s3_server, bucket, storage_class=storage_class, acl="private", part_size=5 * MiB)
    )
    recorder = Recorder(storage)
    storage.put("small", b"x")
    with storage.create("multi") as writer:
        writer.write(b"y" * (6 * MiB))
    for operation in ("PutObject", "CreateMultipartUpload"):
        (params,) = recorder.params(operation)
        assert (params["StorageClass"], params["ACL"]) == (storage_class, "private")
    client = s3_server.client()
    for key in ("backups/one/small", "backups/one/multi"):
        # S3 leaves the header out for STANDARD objects.
        assert client.head_object(Bucket=bucket, Key=key).get("StorageClass", "STANDARD") == storage_class


def test_aws_provider_defaults_are_sent(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket, provider="aws", force_path_style=True))
    recorder = Recorder(storage)
    if server_accepts(s3_server, bucket, StorageClass="STANDARD_IA", ACL="private"):
        storage.put("x", b"1")
    else:  # the server refuses AWS's default class: the error must say which setting to change
        with pytest.raises(StorageError) as info:
            storage.put("x", b"1")
        assert "(InvalidArgument" in str(info.value)
        assert "s3.storageClass STANDARD_IA, s3.acl private" in str(info.value)
    (params,) = recorder.params("PutObject")
    assert (params["StorageClass"], params["ACL"]) == ("STANDARD_IA", "private")


@pytest.mark.parametrize(("sse", "kms_key"), [("AES256", None), ("aws:kms", "alias/backup-key")])
def test_server_side_encryption_is_requested(
    s3_server: Any, bucket: str, sse: str, kms_key: str | None
) -> None:
    storage = S3Storage(options(s3_server, bucket, sse=sse, sse_kms_key_id=kms_key, part_size=5 * MiB))
    recorder = Recorder(storage)
    if sse != "AES256" or not server_accepts(s3_server, bucket, ServerSideEncryption="AES256"):
        # The test server has no KMS (and SeaweedFS no SSE key unless configured): record what we ask
        # for, then drop the headers before signing so the rest of the upload runs for real.
        def strip(request: Any, **_: Any) -> None:
            for header in list(request.headers):
                if header.lower().startswith("x-amz-server-side-encryption"):
                    del request.headers[header]

        storage.client.meta.events.register_first("before-sign.s3", strip)
    storage.put("small", b"x")
    with storage.create("multi") as writer:
        writer.write(b"z" * (6 * MiB))
    for operation in ("PutObject", "CreateMultipartUpload"):
        (params,) = recorder.params(operation)
        assert params["ServerSideEncryption"] == sse
        assert params.get("SSEKMSKeyId") == kms_key
    assert storage.read("multi") == b"z" * (6 * MiB)


def test_failing_data_source_leaves_no_object_and_no_upload(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket, part_size=5 * MiB))

    def rows() -> Iterator[bytes]:
        yield b"a" * (6 * MiB)  # one full part goes out
        raise RuntimeError("lost the database connection")

    with pytest.raises(RuntimeError, match="lost the database"), storage.create("t.sql") as writer:
        for chunk in rows():
            writer.write(chunk)
    assert not storage.exists("t.sql")
    assert s3_server.list_multipart_uploads(bucket) == []
    assert s3_server.list_keys(bucket) == []


def test_explicit_abort_after_parts(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket, part_size=5 * MiB))
    recorder = Recorder(storage)
    writer = storage.create("t.sql")
    writer.write(b"b" * (11 * MiB))
    writer.abort()
    writer.abort()
    assert "AbortMultipartUpload" in recorder.names()
    assert s3_server.list_multipart_uploads(bucket) == []
    assert s3_server.list_keys(bucket) == []


def test_failed_part_upload_aborts(s3_server: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = S3Storage(options(s3_server, bucket, part_size=5 * MiB))
    real_upload_part = storage.upload_part

    def flaky(key: str, upload_id: str, number: int, data: Any) -> str:
        if number == 2:
            raise StorageError("S3 refused uploading part 2 (simulated)")
        return real_upload_part(key, upload_id, number, data)

    monkeypatch.setattr(storage, "upload_part", flaky)
    writer = storage.create("t.sql")
    with pytest.raises(StorageError, match="part 2"):
        writer.write(b"c" * (16 * MiB))
        writer.close()
    assert s3_server.list_multipart_uploads(bucket) == []
    assert not storage.exists("t.sql")


def test_list_pages_delete_and_delete_prefix(
    s3_server: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = S3Storage(options(s3_server, bucket))
    storage.list_page_size = 2  # pagination without writing 1000+ keys
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 3)
    recorder = Recorder(storage)
    names = [f"a/{i:02d}" for i in range(7)] + ["b/1", "metadata"]
    for name in names:
        storage.put(name, name.encode())
    s3_server.client().put_object(Bucket=bucket, Key="outside", Body=b"not ours")
    recorder.calls.clear()
    listed = list(storage.list())
    assert [i.name for i in listed] == names
    assert listed[0].size == 4
    assert recorder.names().count("ListObjectsV2") == 5  # 9 keys, 2 per page
    assert [i.name for i in storage.list("a/0")] == names[:7]

    recorder.calls.clear()
    sent_md5: list[str | None] = []
    storage.client.meta.events.register(
        "before-send.s3.DeleteObjects",
        lambda request, **_: sent_md5.append(request.headers.get("Content-MD5")),
    )
    assert storage.delete_prefix("a/") == 7
    assert recorder.names().count("DeleteObjects") == 3  # 3 + 3 + 1
    assert len(sent_md5) == 3 and all(sent_md5)  # S3 clones that still require it get it
    storage.delete(["b/1", "never-existed"])
    assert s3_server.list_keys(bucket) == ["backups/one/metadata", "outside"]
    assert storage.delete_prefix() == 1
    assert s3_server.list_keys(bucket) == ["outside"]


def test_delete_prefix_aborts_orphaned_uploads(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket))
    s3_server.client().create_multipart_upload(Bucket=bucket, Key="backups/one/x/orphan")
    assert storage.delete_prefix("x/") == 0
    assert s3_server.list_multipart_uploads(bucket) == []


def test_open_storage_takes_bucket_and_prefix_from_the_url(s3_server: Any, bucket: str) -> None:
    storage = open_storage(f"s3://{bucket}/daily/backup-1/", options(s3_server, "ignored"))
    assert storage.url == f"s3://{bucket}/daily/backup-1/"
    storage.check_writable()
    storage.put("metadata", b"done")
    assert s3_server.list_keys(bucket) == ["daily/backup-1/metadata"]


def assert_one_line_without_secret(error: StorageError, *secrets: str) -> str:
    message = str(error)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message
    return message


def test_missing_bucket(s3_server: Any) -> None:
    storage = S3Storage(options(s3_server, "no-such-bucket-tibackup"))
    with pytest.raises(StorageError) as info:
        storage.check_writable()
    message = assert_one_line_without_secret(info.value, s3_server.secret_key)
    assert message == (
        f"bucket 'no-such-bucket-tibackup' does not exist at {s3_server.endpoint}: create it or fix s3.bucket"
    )


def test_wrong_secret_key(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket, secret_key=s3_server.bad_secret_key))
    with pytest.raises(StorageError) as info:
        storage.check_writable()
    message = assert_one_line_without_secret(info.value, s3_server.bad_secret_key, s3_server.secret_key)
    assert "SignatureDoesNotMatch" in message and "check secret_key" in message
    with pytest.raises(StorageError, match="SignatureDoesNotMatch"):
        storage.put("x", b"1")


def test_read_only_credentials(s3_server: Any, bucket: str) -> None:
    if not getattr(s3_server, "readonly_access_key", None):
        pytest.skip("this S3 server has no read-only identity")
    storage = S3Storage(
        options(
            s3_server,
            bucket,
            access_key=s3_server.readonly_access_key,
            secret_key=s3_server.readonly_secret_key,
        )
    )
    with pytest.raises(StorageError) as info:
        storage.check_writable()
    message = assert_one_line_without_secret(info.value, s3_server.readonly_secret_key)
    # SeaweedFS lets this identity list but not write; Ceph RGW refuses even the listing.
    assert message.startswith("S3 denied access while ")
    assert message.endswith(
        "(AccessDenied): grant the credentials access to the bucket and prefix, or fix the Secret"
    )


def closed_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_fails_fast(s3_server: Any, bucket: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    storage = S3Storage(options(s3_server, bucket, endpoint=endpoint))
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        storage.check_writable()
    assert time.monotonic() - started < 10
    message = assert_one_line_without_secret(info.value, s3_server.secret_key)
    assert message == f"cannot reach S3 endpoint {endpoint}: connection refused; check s3.endpoint"


# --- TLS: a custom CA bundle for the endpoint, and it beats AWS_CA_BUNDLE -----------------------------


@pytest.fixture()
def tls_endpoint(s3_server: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https endpoint with a self-signed certificate, forwarding to the real S3 server."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr.decode()[-200:]}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    upstream = (s3_server.host, s3_server.port)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                sock.close()

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                client = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            server = socket.create_connection(upstream)
            threading.Thread(target=pump, args=(client, server), daemon=True).start()
            threading.Thread(target=pump, args=(server, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        listener.close()


def test_custom_ca_bundle_wins_over_aws_ca_bundle(
    s3_server: Any, bucket: str, tls_endpoint: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, cert = tls_endpoint
    monkeypatch.setenv("AWS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    storage = S3Storage(options(s3_server, bucket, endpoint=endpoint, ca_bundle=str(cert)))
    storage.check_writable()
    storage.put("over-tls", b"secure")
    assert s3_server.get_bytes(bucket, "backups/one/over-tls") == b"secure"

    untrusted = S3Storage(options(s3_server, bucket, endpoint=endpoint))
    with pytest.raises(StorageError) as info:
        untrusted.check_writable()
    message = assert_one_line_without_secret(info.value, s3_server.secret_key)
    assert message.startswith(f"TLS verification failed for S3 endpoint {endpoint}: set s3 ca_bundle")


def test_missing_ca_bundle_file(s3_server: Any, bucket: str) -> None:
    with pytest.raises(StorageError, match=r"CA bundle /nonexistent/ca\.pem does not exist"):
        S3Storage(options(s3_server, bucket, ca_bundle="/nonexistent/ca.pem"))


def test_journal_notes_uploads_until_completed_or_aborted(s3_server: Any, bucket: str, tmp_path: Path) -> None:
    journal = FileJournal(tmp_path / "journal")
    storage = S3Storage(options(s3_server, bucket, part_size=5 * MiB, journal=journal))
    done = storage.create("done.sql")
    done.write(b"d" * (6 * MiB))
    kept = storage.create("kept.sql")
    kept.write(b"k" * (6 * MiB))
    (first, second) = sorted(journal.pending(), key=lambda r: r.key)
    assert first.key == "backups/one/done.sql" and first.endpoint == s3_server.endpoint
    done.close()
    assert [r.key for r in journal.pending()] == ["backups/one/kept.sql"]
    kept.abort()
    assert journal.pending() == [] and s3_server.list_multipart_uploads(bucket) == []
    small = storage.create("small.sql")
    small.write(b"s")
    small.close()  # one PUT, no multipart upload: nothing noted
    assert journal.pending() == []
    storage.abort_upload(second.key, second.upload_id)  # already gone: counts as aborted
