"""Content identity from the real S3 server: the ETag a writer's ``close`` returns is the one listing
shows (single PUT and multipart), the multipart ETag computed from the parts matches the server's (Ceph
RGW answers CompleteMultipartUpload without one), and ``put_if_absent`` creates only once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_storage_s3 import options
from tibackup.storage import S3Storage
from tibackup.storage.multipart import FIRST_PART_SIZE
from tibackup.storage.s3 import multipart_etag

pytestmark = pytest.mark.integration


def listed(storage: S3Storage) -> dict[str, str]:
    return {info.name: info.etag for info in storage.list()}


def test_writer_etag_is_the_listed_etag(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket))
    try:
        one = storage.create("one-put")
        one.write(b"x" * 1000)
        single = one.close()
        multi = storage.create("multipart")
        multi.write(b"y" * (FIRST_PART_SIZE + 10))
        multipart = multi.close()
    finally:
        storage.close()
    etags = listed(storage)
    assert etags["one-put"] == single and len(single) == 32
    assert etags["multipart"] == multipart and multipart.endswith("-2")
    assert all(etags.values())


def test_multipart_etag_computed_from_parts_matches_the_server(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket))
    key = storage.key("parts")
    upload = storage.start_upload(key)
    parts = [
        storage.upload_part(key, upload, 1, b"p" * FIRST_PART_SIZE),
        storage.upload_part(key, upload, 2, b"q"),
    ]
    storage.complete_upload(key, upload, list(enumerate(parts, 1)))
    assert listed(storage)["parts"] == multipart_etag(parts)
    assert multipart_etag(["not-hex"]) == ""


def test_put_if_absent_creates_once(s3_server: Any, bucket: str) -> None:
    storage = S3Storage(options(s3_server, bucket))
    first = storage.put_if_absent("claim", b"mine")
    assert first and listed(storage)["claim"] == first
    assert storage.put_if_absent("claim", b"yours") is None
    assert storage.read("claim") == b"mine"
