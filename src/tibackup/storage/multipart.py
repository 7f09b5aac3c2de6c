"""Streaming multipart upload with bounded memory, independent of the provider.

A writer fills one part in memory; a full part goes to a small shared pool of upload threads. The pool
holds at most ``concurrency`` parts at once for all writers together: a writer that would exceed it
waits in ``write``. Memory is therefore about ``(concurrency + open writers) × part size``. An object
that ends before its first part is full is sent with one plain PUT at ``close``.

The provider supplies only the five calls of ``MultipartTarget``; errors come back already translated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Protocol

from tibackup.errors import StorageError
from tibackup.storage.base import ObjectWriter

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_PARTS = 10_000  # S3's limit per upload
FIRST_PART_SIZE = 8 * MiB
LARGEST_PART_SIZE = 128 * MiB
PARTS_PER_STEP = 500  # the part size doubles every this many parts, up to LARGEST_PART_SIZE

Buffer = bytes | bytearray


def part_size_for(part_number: int) -> int:
    """Size of part ``part_number`` (1-based) when the object's size is not known in advance.

    Small objects use small parts (8 MiB); the size doubles every 500 parts and stops at 128 MiB, so
    the 10,000 parts S3 allows hold 1,060 GiB (over 1 TiB) while no part exceeds 128 MiB.
    """
    if not 1 <= part_number <= MAX_PARTS:
        raise ValueError(f"part number {part_number} is outside 1..{MAX_PARTS}")
    return min(FIRST_PART_SIZE << ((part_number - 1) // PARTS_PER_STEP), LARGEST_PART_SIZE)


class MultipartTarget(Protocol):
    def put_whole(self, key: str, data: Buffer) -> str:
        """Store the object in one request; return its ETag."""

    def start_upload(self, key: str) -> str:
        """Begin a multipart upload; return its id."""

    def upload_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        """Upload one part; return its ETag."""

    def complete_upload(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> str:
        """Finish the upload from its parts' ETags; return the object's ETag."""

    def abort_upload(self, key: str, upload_id: str) -> None: ...


class PartPool:
    """Upload threads shared by the writers of one storage, with a cap on parts held in flight."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="s3-part")
        self.failure: StorageError | None = None  # the first part that failed, for every writer

    def submit(self, call: Callable[[], str]) -> Future[str]:
        self._slots.acquire()  # blocks the writer while `concurrency` parts are in flight
        if self.failure is not None:
            # S3 failed (or froze until the timeout): the writer that waited here learns it now, not
            # after its database session timed out waiting for it (then reported as the cause).
            self._slots.release()
            raise self.failure
        try:
            future = self._executor.submit(call)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[str]) -> None:
        if not future.cancelled() and isinstance(future.exception(), StorageError) and self.failure is None:
            self.failure = future.exception()  # type: ignore[assignment]
        self._slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class MultipartWriter(ObjectWriter):
    def __init__(
        self,
        target: MultipartTarget,
        key: str,
        pool: PartPool,
        fixed_part_size: int | None = None,
    ) -> None:
        self.target = target
        self.key = key
        self._pool = pool
        self._fixed_part_size = fixed_part_size
        self._buffer = bytearray()
        self._parts_sent = 0
        self._upload_id: str | None = None
        self._futures: list[tuple[int, Future[str]]] = []
        self._state = "open"  # open → closed | aborted

    @property
    def size_limit(self) -> int:
        """The largest object this writer can finish, in bytes."""
        if self._fixed_part_size:
            return self._fixed_part_size * MAX_PARTS
        return sum(part_size_for(n) for n in range(1, MAX_PARTS + 1))

    def _part_size(self) -> int:
        number = self._parts_sent + 1
        if number > MAX_PARTS:
            raise StorageError(
                f"s3 object {self.key} exceeds {self.size_limit} bytes (S3's 10,000 parts): "
                "split the output into smaller files (e.g. dumper -F)"
            )
        return self._fixed_part_size or part_size_for(number)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open("write to")
        view = memoryview(data).cast("B")
        try:
            while view:
                size = self._part_size()
                if len(self._buffer) >= size:
                    # Full, and more data follows: so this is not the last part.
                    self._send_part()
                    continue
                room = size - len(self._buffer)
                self._buffer += view[:room]
                view = view[room:]
        except BaseException:
            self.abort()
            raise

    def close(self) -> str:
        self._check_open("close")
        try:
            if self._upload_id is None:
                etag = self.target.put_whole(self.key, self._buffer)
            else:
                if self._buffer:
                    self._send_part()
                etags = [(number, future.result()) for number, future in self._futures]
                etag = self.target.complete_upload(self.key, self._upload_id, etags)
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        self._buffer = bytearray()
        self._futures = []
        return etag

    def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer = bytearray()
        futures = [future for _, future in self._futures]
        for future in futures:
            future.cancel()
        wait(futures)  # a part still uploading could otherwise outlive the abort
        self._futures = []
        if self._upload_id is not None:
            try:
                self.target.abort_upload(self.key, self._upload_id)
            except StorageError as exc:
                log.warning("could not abort the multipart upload of %s: %s", self.key, exc)

    def _check_open(self, doing: str) -> None:
        if self._state != "open":
            raise StorageError(f"{doing} s3 object {self.key} after it was {self._state}")

    def _raise_failed_part(self) -> None:
        for _, future in self._futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                future.result()  # raises the part's StorageError

    def _send_part(self) -> None:
        self._raise_failed_part()
        if self._upload_id is None:
            self._upload_id = self.target.start_upload(self.key)
        upload_id = self._upload_id
        number = self._parts_sent + 1
        data, self._buffer = self._buffer, bytearray()
        self._parts_sent = number

        def upload() -> str:
            return self.target.upload_part(self.key, upload_id, number, data)

        self._futures.append((number, self._pool.submit(upload)))
