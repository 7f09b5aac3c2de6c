"""Read: stored bytes → checked against the manifest → decompressed → split into SQL statements.

Everything streams: a file is read in pieces of ``CHUNK`` bytes and handed on one statement at a time,
so memory stays at a few statements whatever the file's size. The statement splitter is one regular
expression run by ``re`` in C (possessive, so it never backtracks): it knows quoted strings (with or
without backslash escapes), quoted identifiers and comments, so a ``;`` inside a value never ends a
statement.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from tibackup.dump.checksum import Digest, ManifestChecksum
from tibackup.dump.config import Compression
from tibackup.errors import StorageError
from tibackup.record import record

CHUNK = 1 << 20
MAX_STATEMENT = 256 << 20  # more than any max_allowed_packet a loader should meet, far less than RAM


class VerifyFailed(StorageError):
    """A file of the backup is not what the manifest says it is (changed, cut short, missing)."""

    reason = "VerifyFailed"


@record(eq=True)
class Expected:
    """What the manifest says one file is: its stored size and, when the entry has one, its checksum
    (``entry_checksum``: the kind and the hex digest)."""

    size: int
    checksum: ManifestChecksum | None = None
    digest: str = ""


class CheckedReader:
    """The stored bytes of one file, counted and (when the manifest gives a checksum) hashed on the way;
    ``check`` compares them with ``want`` at the end."""

    def __init__(
        self, raw: BinaryIO, name: str, on_bytes: Callable[[int], None] = lambda n: None,
        want: Expected | None = None,
    ) -> None:  # fmt: skip
        self.raw, self.name, self.on_bytes, self.want = raw, name, on_bytes, want
        self.hash: Digest | None = want.checksum.new() if want is not None and want.checksum else None
        self.size = 0

    def read(self, n: int = CHUNK) -> bytes:
        data = self.raw.read(n)
        if data:
            if self.hash is not None:
                self.hash.update(data)
            self.size += len(data)
            self.on_bytes(len(data))
        return data

    def check(self) -> None:
        """Raise VerifyFailed naming the file unless it had the size and checksum ``want`` says."""
        want = self.want
        if want is None:
            return
        if self.size != want.size:
            raise VerifyFailed(
                f"{self.name} has {self.size} bytes but the manifest says {want.size}: the backup is "
                "damaged; restore from another backup"
            )
        if self.hash is not None and self.hash.hexdigest() != want.digest:
            raise VerifyFailed(
                f"{self.name} does not match its {want.checksum} in the manifest: the file was changed or "
                "damaged; restore from another backup"
            )


def manifest_first(statements: Iterator[tuple[int, bytes]], reader: CheckedReader) -> Iterator[tuple[int, bytes]]:
    """``statements``, but when they end in a damaged-file error (cut short, cannot be decompressed)
    and the manifest knows the file, the manifest's verdict is the error (it says exactly what
    differs): the rest of the file is read and compared first."""
    try:
        yield from statements
    except VerifyFailed:
        if reader.want is not None:
            while reader.read(CHUNK):
                pass
            reader.check()
        raise


def decompressed(reader: CheckedReader, compression: Compression) -> Iterator[bytes]:
    """The file's content in pieces, whatever its compression (the file is read to its end)."""
    if compression is Compression.NONE:
        while data := reader.read(CHUNK):
            yield data
        return
    unpack = {Compression.GZIP: _gunzip, Compression.ZSTD: _unzstd, Compression.SNAPPY: _unsnappy}
    try:
        yield from unpack[compression](reader)
    except VerifyFailed:
        raise
    except Exception as exc:  # zlib.error, ZstdError, cramjam's DecompressionError: the bytes are bad
        if not _decompression_error(exc):
            raise
        raise VerifyFailed(
            f"{reader.name} cannot be decompressed ({compression.value}: {exc}): the file is damaged; "
            "restore from another backup"
        ) from None


def _decompression_error(exc: Exception) -> bool:
    return isinstance(exc, zlib.error) or type(exc).__name__ in ("ZstdError", "DecompressionError")


def _gunzip(reader: CheckedReader) -> Iterator[bytes]:
    z = zlib.decompressobj(31)
    fed = False  # the current member has had input (a member begun but not ended: the file is cut)
    while data := reader.read(CHUNK):
        while data:
            fed = True
            out = z.decompress(data)
            if out:
                yield out
            data = z.unused_data
            if z.eof:  # a file of several gzip members (concatenated), as gzip itself reads it
                z, fed = zlib.decompressobj(31), False
    if fed and not z.eof:
        raise VerifyFailed(
            f"{reader.name} ends inside its gzip stream (no end of stream): the file is cut short; "
            "the backup is damaged, restore from another backup"
        )


def _unzstd(reader: CheckedReader) -> Iterator[bytes]:
    import zstandard

    stream = zstandard.ZstdDecompressor().stream_reader(reader, read_across_frames=True)  # type: ignore[arg-type]
    while data := stream.read(CHUNK):
        yield data


def _unsnappy(reader: CheckedReader) -> Iterator[bytes]:
    """Snappy's framing format (what Dumpling writes): chunks of type, 3-byte length, payload."""
    buf = b""
    eof = False
    while True:
        while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[1:4], "little"):
            data = reader.read(CHUNK)
            if not data:
                eof = True
                break
            buf += data
        if eof and len(buf) < 4 + (int.from_bytes(buf[1:4], "little") if len(buf) >= 4 else 0):
            if buf:
                raise VerifyFailed(f"{reader.name} ends inside a snappy frame: the file is cut short")
            return
        kind, length = buf[0], int.from_bytes(buf[1:4], "little")
        block, buf = buf[: 4 + length], buf[4 + length :]
        if kind in (0x00, 0x01):  # compressed / uncompressed data
            yield _snappy_block(block, reader.name)
        elif kind in (0xFF, 0xFE) or 0x80 <= kind <= 0xFD:
            continue  # stream identifier, padding, skippable chunks
        else:
            raise VerifyFailed(f"{reader.name} is not a framed snappy file (chunk type {kind:#x})")


_SNAPPY_STREAM_ID = b"\xff\x06\x00\x00sNaPpY"


def _snappy_block(block: bytes, name: str) -> bytes:
    """One data block's content, its masked CRC-32C (the block's first 4 bytes after the header)
    checked: cramjam's framed decoder checks it, so the block is handed to it as a stream of one."""
    import cramjam

    try:
        return bytes(cramjam.snappy.decompress(_SNAPPY_STREAM_ID + block))
    except Exception as exc:
        if _decompression_error(exc) and "checksum" in str(exc).lower():
            raise VerifyFailed(
                f"{name} has a snappy block that fails its CRC-32C check: the file is damaged; "
                "restore from another backup"
            ) from None
        raise


_COMMON = rb"`[^`]*+`|/\*(?:[^*]++|\*(?!/))*+\*/|--[ \t][^\n]*+|\#[^\n]*+|[/#-]"
_STATEMENT_ESCAPED = re.compile(
    rb"""(?:[^'";`/#-]++|'[^'\\]*+(?:\\.[^'\\]*+)*+'|"[^"\\]*+(?:\\.[^"\\]*+)*+"|""" + _COMMON + rb")*+;",
    re.S,
)
_COMMENTS_ONLY = re.compile(  # what may follow a file's last ';': blanks and comments (not /*!…*/)
    rb"(?:\s++|/\*(?!!)(?:[^*]++|\*(?!/))*+\*/|--(?:[ \t][^\n]*+)?(?=\n|\Z)|\#[^\n]*+)*+", re.S
)
_STATEMENT_PLAIN = re.compile(rb"""(?:[^'";`/#-]++|'[^']*+'|"[^"]*+"|""" + _COMMON + rb")*+;", re.S)


def split_statements(
    chunks: Iterable[bytes], *, backslash_escapes: bool = True, name: str = ""
) -> Iterator[tuple[int, bytes]]:
    """(offset, statement) of every statement in the stream, the ``;`` included; offset is where it
    starts in the uncompressed content (a stable key for the checkpoint)."""
    pattern = _STATEMENT_ESCAPED if backslash_escapes else _STATEMENT_PLAIN
    buf = b""
    base = 0  # offset of buf[0] in the stream
    for more in gathered(chunks, lambda: len(buf), name):  # noqa: B023 - the buffer as it is then
        buf = buf + more if buf else more
        pos = 0
        while True:
            end = _plain_end(buf, pos)
            if end == 0:
                break  # no ';' yet: the statement goes on in the next piece
            if end < 0:
                m = pattern.match(buf, pos)
                if m is None:
                    break
                end = m.end()
            statement = buf[pos:end]
            if len(statement) > 64 or statement.strip() != b";":  # (no copy of a long one to strip it)
                yield base + pos, statement
            pos = end
        buf = buf[pos:]
        base += pos
    if buf.strip():
        if _COMMENTS_ONLY.fullmatch(buf) is None:  # Dumpling ends every statement with ';'
            raise VerifyFailed(
                f"{name or 'a file'} ends in the middle of its statement at byte {base} (no closing ';'): "
                "the file is cut short or damaged; restore from another backup"
            )
        yield base, buf  # comments after the last statement (mysqldump's trailer)


_SPECIAL = (b"\\", b"#", b"/*", b"--")


def _plain_end(buf: bytes, pos: int) -> int:
    """The end of the statement at ``pos`` (after its ``;``) found without the regular expression, in
    the common case where a few scans in C make it certain: the text before the first ``;`` holds no
    backslash or comment mark, quotes of one kind only and an even number of them (a doubled quote
    inside a string counts twice), and backquoted names (an even number of backquotes) only before
    the first quote — so that ``;`` is outside every string and name. 0: no ``;`` at all yet; -1: let
    the regular expression decide (it gives the same answer wherever this one gives one)."""
    semi = buf.find(b";", pos)
    if semi < 0:
        return 0
    for mark in _SPECIAL:
        if buf.find(mark, pos, semi) >= 0:
            return -1
    single, double = buf.count(b"'", pos, semi), buf.count(b'"', pos, semi)
    if (single and double) or (single + double) % 2:
        return -1
    last_tick = buf.rfind(b"`", pos, semi)
    if last_tick >= 0:
        first_quote = buf.find(b"'" if single else b'"', pos, semi)
        if (0 <= first_quote < last_tick) or buf.count(b"`", pos, last_tick + 1) % 2:
            return -1
    return semi + 1


def gathered(chunks: Iterable[bytes], pending: Callable[[], int], name: str) -> Iterator[bytes]:
    """The chunks joined so that each piece is at least as long as what is still pending: a statement
    that spans many chunks is then scanned a few times (the buffer doubles), not once per chunk."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= pending():
            if pending() + size > MAX_STATEMENT:
                raise VerifyFailed(
                    f"{name}: a statement or line longer than {MAX_STATEMENT >> 20} MiB (an unterminated "
                    "quote, or the wrong --escape-backslash/--csv-* settings?)"
                )
            yield b"".join(parts) if len(parts) > 1 else parts[0]
            parts, size = [], 0
    if parts:
        yield b"".join(parts)
