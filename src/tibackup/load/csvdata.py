"""Read (CSV): Dumpling's CSV files turned into INSERT statements, so they load and resume as SQL does.

The settings are the dump's (``--csv-separator``, ``--csv-delimiter``, ``--csv-null-value``, the line
terminator, whether there is a header line, whether backslash escapes are used), given as flags like
Lightning's ``mydumper.csv``. A quoted field becomes a string literal (Dumpling's escapes \\\\ \\0 \\r
\\n and \\" are SQL's too); an unquoted one is the null value → NULL, a number → itself, anything else
a string. Rows are grouped into statements of about ``STATEMENT_BYTES`` of CSV, cut at the same rows
whatever the read sizes, so a statement's offset names the same rows in every run.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator

from tibackup.dump.conn import quote_ident
from tibackup.errors import UsageError
from tibackup.load.config import LoadConfig
from tibackup.load.read import VerifyFailed, gathered
from tibackup.load.source import BackupFile

STATEMENT_BYTES = 1_000_000
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _field_pattern(config: LoadConfig) -> re.Pattern[bytes]:
    csv = config.csv
    if len(csv.delimiter) > 1:
        raise UsageError("--csv-delimiter must be one character (or empty)")
    sep, term = re.escape(csv.separator), re.escape(csv.line_terminator)
    stops = re.escape(csv.separator[:1] + csv.line_terminator[:1])
    if config.escape_backslash:
        unquoted = rb"((?:[^" + stops + rb"\\]++|\\.)*+)"
    else:
        unquoted = rb"([^" + stops + rb"]*+)"
    quoted = b""
    if csv.delimiter:
        d = re.escape(csv.delimiter)
        inner = (
            rb"(?:[^" + d + rb"\\]++|\\.)*+"
            if config.escape_backslash
            else rb"(?:[^" + d + rb"]++|" + d + d + rb")*+"
        )
        quoted = d + rb"(" + inner + rb")" + d + rb"|"
    return re.compile(rb"(?:" + quoted + unquoted + rb")(" + sep + rb"|" + term + rb")", re.S)


class _Converter:
    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.null = config.csv.null_value
        self.backslash = config.escape_backslash
        self.delimiter = config.csv.delimiter
        self.separator = config.csv.separator

    def quoted(self, raw: bytes) -> bytes:
        if self.backslash:
            # Escapes are SQL's already; a quote is escaped by the dump when it is the delimiter.
            return b"'" + (raw if self.delimiter == b"'" else raw.replace(b"'", b"\\'")) + b"'"
        if self.delimiter:
            raw = raw.replace(self.delimiter + self.delimiter, self.delimiter)
        return b"'" + raw.replace(b"'", b"''") + b"'"

    def unquoted(self, raw: bytes) -> bytes:
        if raw == self.null:
            return b"NULL"
        if _NUMBER.fullmatch(raw):
            return raw
        return self.quoted(raw)


def csv_statements(
    chunks: Iterable[bytes], file: BackupFile, config: LoadConfig
) -> Iterator[tuple[int, bytes]]:
    """(offset of the first row, INSERT statement) for the rows of one CSV file."""
    prefix = f"INSERT INTO {quote_ident(file.table)} VALUES\n".encode()
    header = not config.csv.no_header
    rows: list[bytes] = []
    size, start = 0, 0
    for offset, fields in _rows(chunks, file, config):
        if header:
            prefix, header = _prefix_with_columns(file, fields), False
            continue
        if not rows:
            start = offset
        row = b"(" + b",".join(fields) + b")"
        rows.append(row)
        size += len(row)
        if size >= STATEMENT_BYTES:
            yield start, prefix + b",\n".join(rows) + b";\n"
            rows, size = [], 0
    if rows:
        yield start, prefix + b",\n".join(rows) + b";\n"


def _rows(chunks: Iterable[bytes], file: BackupFile, config: LoadConfig) -> Iterator[tuple[int, list[bytes]]]:
    """(offset, SQL values) of every CSV line."""
    pattern = _field_pattern(config)
    convert = _Converter(config)
    term = config.csv.line_terminator
    quoted_group, plain_group = (1, 2) if config.csv.delimiter else (0, 1)
    buf, base, row_start = b"", 0, 0
    fields: list[bytes] = []
    for chunk in itertools.chain(gathered(chunks, lambda: len(buf), file.name), [None]):  # noqa: B023
        final = chunk is None
        if chunk is None:
            if not buf:
                break
            if not buf.endswith(term):  # Dumpling ends every line with it: the file was cut
                raise VerifyFailed(
                    f"{file.name} ends in the middle of its line at byte {base + row_start} (no line "
                    "terminator after it): the file is cut short or damaged; restore from another backup "
                    "(or check --csv-line-terminator)"
                )
        else:
            buf = buf + chunk if buf else chunk
        pos = 0
        # Unless at the end, a match that reaches the end of the buffer may be cut short by it.
        while (m := pattern.match(buf, pos)) is not None and (final or m.end() < len(buf)):
            if quoted_group and m.group(quoted_group) is not None:
                fields.append(convert.quoted(m.group(quoted_group)))
            else:
                fields.append(convert.unquoted(m.group(plain_group)))
            pos = m.end()
            if m.group(plain_group + 1) == term:
                yield base + row_start, fields
                fields, row_start = [], pos
        if final and pos != len(buf):
            raise VerifyFailed(
                f"{file.name}: cannot read the CSV near byte {base + pos}; check the --csv-* flags"
            )
        buf, base, row_start = buf[pos:], base + pos, row_start - pos


def _prefix_with_columns(file: BackupFile, fields: list[bytes]) -> bytes:
    names = []
    for literal in fields:
        name = literal[1:-1] if literal.startswith(b"'") else literal
        name = re.sub(rb"\\(.)", rb"\1", name)
        names.append(quote_ident(name.decode("utf-8", "replace")))
    return f"INSERT INTO {quote_ident(file.table)} ({','.join(names)}) VALUES\n".encode()
