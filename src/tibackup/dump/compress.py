"""Streaming compressors for data and schema files (gzip, zstd, framed snappy as Dumpling writes)."""

from __future__ import annotations

import zlib
from typing import Protocol

from tibackup.dump.config import Compression


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Gzip:
    def __init__(self) -> None:
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip container, as Go's gzip.Writer

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


class _Zstd:
    def __init__(self) -> None:
        import zstandard  # here, not at the top: a plain dump should not pay for loading it

        self._z = zstandard.ZstdCompressor(level=3).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


class _Snappy:
    def __init__(self) -> None:
        import cramjam

        self._z = cramjam.snappy.Compressor()

    def compress(self, data: bytes) -> bytes:
        self._z.compress(data)
        return bytes(self._z.flush())

    def finish(self) -> bytes:
        return bytes(self._z.finish())


def make_compressor(compression: Compression) -> Compressor:
    if compression is Compression.GZIP:
        return _Gzip()
    if compression is Compression.ZSTD:
        return _Zstd()
    if compression is Compression.SNAPPY:
        return _Snappy()
    return _Identity()
