"""Plan chunks (files, units of parallel work) and batches (one query each) for a table.

A chunk is what Dumpling's ``-r`` makes: a key range written to its own file(s). Inside a chunk, rows
are read in batches small enough for the server to render into one string (the bulk path), so memory
stays bounded whatever the table size. The first range has no lower bound and the last none upper
bound, so rows outside the planned MIN..MAX (a stale estimate, a row written since) are never lost.

Keys: a single integer key is split arithmetically from MIN/MAX and the row estimate, as Dumpling
does; on TiDB a table splits along its regions (TABLESAMPLE REGIONS()). Beyond Dumpling, composite and string keys are split too, by walking the key index in steps
(``LIMIT 1 OFFSET n``) — one ordered pass over the index, no table scan. Tables without a usable key
are one chunk, read as a stream, and so is a table whose row estimate is well below ``-r``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from tibackup.dump import tidb
from tibackup.dump.catalog import Column, Kind, Table
from tibackup.dump.conn import DB, Row, quote_ident
from tibackup.dump.render import sql_literal

BATCH_TARGET_BYTES = 4 << 20  # rendered bytes per bulk query; far below the server's max_allowed_packet
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 64, 100_000
MAX_BATCHES_PER_TABLE = 200_000


@dataclass(frozen=True)
class Chunk:
    table: Table
    index: int
    where: str  # the chunk's whole range ('' = every row)
    batches: tuple[str, ...]  # conditions of the bulk queries; () = read the chunk as one stream


def batch_rows_for(table: Table) -> int:
    per_row = max(table.avg_row_length, 16) * 1.3 + 8 * len(table.columns)
    return int(min(MAX_BATCH_ROWS, max(MIN_BATCH_ROWS, BATCH_TARGET_BYTES / per_row)))


def _and(*conditions: str) -> str:
    parts = [c for c in conditions if c]
    if not parts:
        return ""
    return " AND ".join(f"({c})" if len(parts) > 1 else c for c in parts)


def int_range(col: str, lo: int | None, hi: int | None) -> str:
    if lo is None and hi is None:
        return ""
    if lo is None:
        return f"{col} < {hi}"
    if hi is None:
        return f"{col} >= {lo}"
    return f"{col} >= {lo} AND {col} < {hi}"


def _plan_integer(db: DB, table: Table, where: str, chunk_rows: int, bulk: bool) -> list[Chunk]:
    key = table.key[0]
    col = quote_ident(key.name)
    source = f"{quote_ident(table.schema)}.{quote_ident(table.name)}"
    row = db.query(f"SELECT MIN({col}), MAX({col}) FROM {source}{' WHERE ' + where if where else ''}")[0]
    if row[0] is None or row[1] is None:
        return [Chunk(table, 0, where, (where,) if bulk else ())]
    lo, hi = int(row[0]), int(row[1])
    span = hi - lo + 1
    density = min(1.0, max(table.est_rows, 1) / span)  # rows per key value
    batch_step = max(1, int(batch_rows_for(table) / density))
    if span / batch_step > MAX_BATCHES_PER_TABLE:
        batch_step = span // MAX_BATCHES_PER_TABLE + 1
    chunk_step = max(batch_step, int(chunk_rows / density)) if chunk_rows else span
    # Chunk boundaries: lo, lo+step, …; the first chunk open below, the last open above.
    starts = list(range(lo, hi + 1, chunk_step))
    chunks: list[Chunk] = []
    for i, start in enumerate(starts):
        c_lo = None if i == 0 else start
        c_hi = None if i == len(starts) - 1 else starts[i + 1]
        batches: list[str] = []
        if bulk:
            b_starts = list(range(start, (c_hi if c_hi is not None else hi + 1), batch_step))
            for j, b in enumerate(b_starts):
                b_lo = c_lo if j == 0 else b
                b_hi = c_hi if j == len(b_starts) - 1 else b_starts[j + 1]
                batches.append(_and(int_range(col, b_lo, b_hi), where))
        chunks.append(Chunk(table, i, _and(int_range(col, c_lo, c_hi), where), tuple(batches)))
    return chunks


def key_literal(column: Column, value: bytes) -> str:
    """A key value as a literal that compares the way the column does (charset and collation kept)."""
    if column.kind is Kind.NUMBER:
        return value.decode("ascii")
    if column.kind in (Kind.BYTES, Kind.BIT) or not column.charset or column.charset == "binary":
        return sql_literal(value)
    if column.data_type in ("char", "varchar", "text", "tinytext", "mediumtext", "longtext", "enum", "set"):
        return f"_{column.charset} {sql_literal(value)}"
    return "'" + value.decode("ascii", "replace").replace("'", "''") + "'"  # dates, times: ASCII text


def tuple_compare(columns: Sequence[Column], values: Row, op: str) -> str:
    """(a, b) > (x, y) spelled out so every server uses the key index: a > x OR (a = x AND b > y)."""
    assert op in (">", ">=")
    terms: list[str] = []
    for i, column in enumerate(columns):
        eq = [
            f"{quote_ident(c.name)} = {key_literal(c, v or b'')}"
            for c, v in zip(columns[:i], values[:i], strict=True)
        ]
        last_op = op if i == len(columns) - 1 else ">"
        cmp = f"{quote_ident(column.name)} {last_op} {key_literal(column, values[i] or b'')}"
        terms.append("(" + " AND ".join([*eq, cmp]) + ")")
    return " OR ".join(terms)


def _range_between(columns: Sequence[Column], lo: Row | None, hi: Row | None) -> str:
    lower = f"({tuple_compare(columns, lo, '>=')})" if lo is not None else ""
    upper = f"NOT ({tuple_compare(columns, hi, '>=')})" if hi is not None else ""
    return _and(lower, upper)


def walk_boundaries(db: DB, table: Table, where: str, step: int) -> list[Row]:
    """Every ``step``-th key in key order: one ordered pass over the key index."""
    cols = ", ".join(quote_ident(c.name) for c in table.key)
    source = f"{quote_ident(table.schema)}.{quote_ident(table.name)}"
    bounds: list[Row] = []
    while True:
        after = tuple_compare(table.key, bounds[-1], ">") if bounds else ""
        cond = _and(after, where)
        rows = db.query(
            f"SELECT {cols} FROM {source}{' WHERE ' + cond if cond else ''} ORDER BY {cols} LIMIT 1 OFFSET {step - 1}",
            f"splitting {table.schema}.{table.name}",
        )
        if not rows or len(bounds) >= MAX_BATCHES_PER_TABLE:
            return bounds
        bounds.append(rows[0])


def _plan_walked(db: DB, table: Table, where: str, chunk_rows: int, bulk: bool) -> list[Chunk]:
    batch_rows = batch_rows_for(table)
    if bulk:
        step = min(batch_rows, chunk_rows) if chunk_rows else batch_rows
    else:
        step = max(chunk_rows, 1)
    bounds = walk_boundaries(db, table, where, step)
    per_chunk = max(1, round(chunk_rows / step)) if chunk_rows and bulk else 1
    if not chunk_rows:
        per_chunk = len(bounds) + 1
    edges: list[Row | None] = [None, *bounds, None]
    ranges = list(itertools.pairwise(edges))
    chunks: list[Chunk] = []
    for i in range(0, len(ranges), per_chunk):
        group = ranges[i : i + per_chunk]
        chunk_where = _and(_range_between(table.key, group[0][0], group[-1][1]), where)
        batches = tuple(_and(_range_between(table.key, lo, hi), where) for lo, hi in group) if bulk else ()
        chunks.append(Chunk(table, len(chunks), chunk_where, batches))
    return chunks


def _plan_regions(db: DB, table: Table, where: str) -> list[Chunk]:
    """TiDB: one chunk per region, read as a stream; a table without a primary key splits on _tidb_rowid."""
    key = table.key or (Column(tidb.ROW_ID, "bigint", "bigint", False),)
    starts = tidb.region_start_keys(db, table.schema, table.name, [c.name for c in key])
    edges: list[Row | None] = [None, *starts[1:], None]  # the first region starts the table: open below
    return [
        Chunk(table, i, _and(_range_between(key, lo, hi), where), ())
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]


def _surely_one_chunk(table: Table, chunk_rows: int) -> bool:
    """Like Dumpling, trust the server's row estimate when it says a table is well below ``-r``: no query
    to split it (walking a string key reads its whole index). An estimate of 0 may be a table loaded
    moments ago whose statistics have not caught up, so it is planned as usual."""
    return not chunk_rows or 0 < table.est_rows < chunk_rows // 2


def plan_chunks(
    db: DB, table: Table, *, where: str, chunk_rows: int, bulk: bool, on_tidb: bool = False
) -> list[Chunk]:
    """The chunks of one table, each with its batches when the bulk path applies."""
    if on_tidb and chunk_rows:
        return _plan_regions(db, table, where)
    if not table.key or (not bulk and _surely_one_chunk(table, chunk_rows)):
        return [Chunk(table, 0, where, ())]
    if len(table.key) == 1 and table.key[0].is_integer:
        return _plan_integer(db, table, where, chunk_rows, bulk)
    return _plan_walked(db, table, where, chunk_rows, bulk)
