"""Plan chunks (files, units of parallel work) and batches (one query each) for a table.

A chunk is what Dumpling's ``-r`` makes: a key range written to its own file(s), numbered as Dumpling
numbers them. Inside a chunk, rows are read in batches small enough for the server to render into one
string (the bulk path), so memory stays bounded whatever the table size. The first range has no lower
bound and the last none upper bound, so rows outside the planned MIN..MAX (a stale estimate, a row
written since) are never lost.

Dumpling's rule, followed exactly (``concurrentDumpTable``): the column is the first column of the
primary key if it is an integer, else of the unique key with the fewest columns, else of the index with
the highest cardinality (``chunk_field``). ``count`` is the optimizer's estimate (``EXPLAIN SELECT col``,
with ``--where``); below ``-r`` the table is one chunk. Otherwise ``[MIN, MAX]`` splits into steps of
``(MAX - MIN) // (count // rows) + 1`` key values, one chunk each, the first also taking NULL keys.
On TiDB a table splits along its regions (TABLESAMPLE REGIONS()). Without an integer column, string
and composite keys are split too (as Dumpling's newest release does) by walking the key index
(``LIMIT 1 OFFSET n``): every chunk exactly ``-r`` rows, the last the rest. Tables without a usable key
are one chunk, read as a stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from tibackup.dump import tidb
from tibackup.dump.catalog import Column, Kind, Table
from tibackup.dump.conn import DB, Row, quote_ident
from tibackup.dump.render import sql_literal
from tibackup.errors import DatabaseError
from tibackup.record import record

BATCH_TARGET_BYTES = 4 << 20  # rendered bytes per bulk query; far below the server's max_allowed_packet
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 64, 100_000
MAX_BATCHES_PER_TABLE = 200_000


@record
class Chunk:
    """A part of a table that one task reads: its key range, and the batches or halves it is read in."""

    table: Table
    index: int
    where: str  # the chunk's whole range ('' = every row)
    batches: tuple[str, ...]  # conditions of the bulk queries; () = read the chunk as one stream
    query: str = ""  # --sql: the query whose result this chunk is (its table has no name)
    # The chunk's lower and upper half (by the key's first column, so the halves' rows in key order are
    # the chunk's), for reading one chunk with two workers at the end of a dump; () = not splittable.
    halves: tuple[str, ...] = ()
    quarters: tuple[str, ...] = ()  # the same in four parts, for the last chunk of a table


def batch_rows_for(table: Table) -> int:
    per_row = max(table.avg_row_length, 16) * 1.3 + 8 * len(table.columns)
    return int(min(MAX_BATCH_ROWS, max(MIN_BATCH_ROWS, BATCH_TARGET_BYTES / per_row)))


def _and(*conditions: str) -> str:
    parts = [c for c in conditions if c]
    if not parts:
        return ""
    return " AND ".join(f"({c})" if len(parts) > 1 else c for c in parts)


def int_range(col: str, lo: int | None, hi: int | None) -> str:
    """The integer range ``[lo, hi)`` (an open end for None). Both ends as one ``BETWEEN lo AND hi-1``:
    the same rows, but MariaDB evaluates one condition per row instead of two ANDed comparisons (it keeps
    a range's bounds as a WHERE to check every row it reads): ~100 fewer server instructions a row, 1.8 %
    of the server's work for the 1M-row bench dump (bench/servergrind.py, docs/dump-performance.md)."""
    if lo is None and hi is None:
        return ""
    if lo is None:
        return f"{col} < {hi}"
    if hi is None:
        return f"{col} >= {lo}"
    return f"{col} BETWEEN {lo} AND {hi - 1}"


def estimate_rows(db: DB, table: Table, column: Column | None, where: str) -> int:
    """Dumpling's ``estimateCount``: the optimizer's row estimate for the dump's query (0 if none)."""
    col = quote_ident(column.name) if column else "*"
    source = table.source
    try:
        rows = db.query(
            f"EXPLAIN SELECT {col} FROM {source}{' WHERE ' + where if where else ''}",
            f"estimating the rows of {table.schema}.{table.name}",
        )
    except DatabaseError:
        return 0
    # The estimate's column by the layout of each server's EXPLAIN (its names come back in the session's
    # binary charset): MariaDB and MySQL 5.6 `rows` (10 columns), MySQL 5.7+ `rows` (12), TiDB `estRows`
    # (5) or `count` (4). Like Dumpling, the last row's (TiDB's leaf scan).
    field = {10: 8, 12: 9, 5: 1, 4: 1}.get(len(rows[-1])) if rows else None
    if field is None:
        return 0
    try:
        return int(float((rows[-1][field] or b"0").decode()))
    except ValueError:
        return 0


def _with_nulls(col: str, condition: str) -> str:
    return f"{col} IS NULL OR {condition}" if condition else ""


def _int_batches(
    col: str, bounds: tuple[int | None, int | None], start: int, end: int, step: int, nulls: bool, where: str
) -> tuple[str, ...]:
    """Batches [start, end) of one chunk, ``step`` key values each; the outer ones keep the chunk's bounds."""
    starts = list(range(start, end, step)) or [start]
    batches: list[str] = []
    for j, b in enumerate(starts):
        b_lo = bounds[0] if j == 0 else b
        b_hi = bounds[1] if j == len(starts) - 1 else starts[j + 1]
        condition = int_range(col, b_lo, b_hi)
        batches.append(_and(_with_nulls(col, condition) if nulls and j == 0 else condition, where))
    return tuple(batches)


def _plan_integer(
    db: DB, table: Table, field: Column, where: str, chunk_rows: int, count: int, bulk: bool
) -> list[Chunk]:
    col = quote_ident(field.name)
    source = table.source
    row = db.query(f"SELECT MIN({col}), MAX({col}) FROM {source}{' WHERE ' + where if where else ''}")[0]
    if row[0] is None or row[1] is None:
        return [Chunk(table, 0, where, (where,) if bulk else ())]
    lo, hi = int(row[0]), int(row[1])
    span = hi - lo + 1
    # Dumpling: count // rows chunks of (MAX - MIN) // chunks + 1 key values each.
    chunk_step = (hi - lo) // max(1, count // chunk_rows) + 1 if chunk_rows else span
    batch_step = 0
    if bulk and table.key and table.key[0] == field:  # batches of key ranges keep the key's order
        density = min(1.0, max(table.est_rows, 1) / span)  # rows per key value
        batch_step = max(1, int(batch_rows_for(table) / density))
        if span / batch_step > MAX_BATCHES_PER_TABLE:
            batch_step = span // MAX_BATCHES_PER_TABLE + 1
    starts = list(range(lo, hi + 1, chunk_step))
    chunks: list[Chunk] = []
    for i, start in enumerate(starts):
        c_lo = None if i == 0 else start
        c_hi = None if i == len(starts) - 1 else starts[i + 1]
        nulls = i == 0 and field.nullable
        condition = int_range(col, c_lo, c_hi)
        batches: tuple[str, ...] = ()
        if batch_step:
            end = c_hi if c_hi is not None else hi + 1
            batches = _int_batches(col, (c_lo, c_hi), start, end, batch_step, nulls, where)
        halves: tuple[str, ...] = ()
        quarters: tuple[str, ...] = ()
        span = (c_hi if c_hi is not None else hi + 1) - start
        mid = start + span // 2
        if not nulls and not batch_step and table.key and table.key[0] == field and start < mid:
            halves = (_and(int_range(col, c_lo, mid), where), _and(int_range(col, mid, c_hi), where))
            q1, q3 = start + span // 4, start + span * 3 // 4
            if start < q1 < mid < q3:
                cuts = (c_lo, q1, mid, q3, c_hi)
                quarters = tuple(_and(int_range(col, a, b), where) for a, b in itertools.pairwise(cuts))
        chunks.append(
            Chunk(
                table,
                i,
                _and(_with_nulls(col, condition) if nulls else condition, where),
                batches,
                "",
                halves,
                quarters,
            )
        )
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


def walk_boundaries(db: DB, table: Table, where: str, steps: Iterator[int]) -> list[Row]:
    """Keys in key order, each the next step's number of rows after the one before (the first that many
    rows from the start): one ordered pass over the key index."""
    cols = ", ".join(quote_ident(c.name) for c in table.key)
    source = table.source
    bounds: list[Row] = []
    for step in steps:
        after = tuple_compare(table.key, bounds[-1], ">=") if bounds else ""
        cond = _and(after, where)
        rows = db.query(
            f"SELECT {cols} FROM {source}{' WHERE ' + cond if cond else ''} ORDER BY {cols} LIMIT 1 OFFSET {step}",
            f"splitting {table.schema}.{table.name}",
        )
        if not rows or len(bounds) >= MAX_BATCHES_PER_TABLE:
            return bounds
        bounds.append(rows[0])
    return bounds


def _plan_walked(db: DB, table: Table, where: str, chunk_rows: int, bulk: bool) -> list[Chunk]:
    """Chunks of exactly ``chunk_rows`` rows (0: one chunk), each cut into batches when ``bulk``."""
    batch_rows = batch_rows_for(table)
    if chunk_rows:
        per_chunk = -(-chunk_rows // batch_rows) if bulk else 1
        sizes = [chunk_rows // per_chunk + (1 if i < chunk_rows % per_chunk else 0) for i in range(per_chunk)]
    else:
        per_chunk, sizes = 0, [batch_rows]
    bounds = walk_boundaries(db, table, where, itertools.cycle(sizes))
    edges: list[Row | None] = [None, *bounds, None]
    ranges = list(itertools.pairwise(edges))
    per_chunk = per_chunk or len(ranges)
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
    starts = tidb.region_start_keys(db, table.schema, table.name, [c.name for c in key], table.partition)
    edges: list[Row | None] = [None, *starts[1:], None]  # the first region starts the table: open below
    return [
        Chunk(table, i, _and(_range_between(key, lo, hi), where), ())
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]


def plan_chunks(
    db: DB, table: Table, *, where: str, chunk_rows: int, bulk: bool, on_tidb: bool = False
) -> list[Chunk]:
    """The chunks of one table (Dumpling's, for ``-r``), each with its batches when the bulk path applies."""
    if on_tidb and chunk_rows:
        return _plan_regions(db, table, where)
    whole = [Chunk(table, 0, where, ())]
    if chunk_rows:
        field = table.chunk_field
        count = estimate_rows(db, table, field or (table.key[0] if table.key else None), where)
        if field is not None and count >= chunk_rows:
            return _plan_integer(db, table, field, where, chunk_rows, count, bulk)
        if field is None and table.key and (count > chunk_rows or count == 0):
            return _plan_walked(db, table, where, chunk_rows, bulk)
    if not bulk or not table.key:
        return whole  # one chunk, read as one stream
    if table.key[0].is_integer:  # one chunk, in batches of key ranges
        return _plan_integer(db, table, table.key[0], where, 0, 0, bulk)
    return _plan_walked(db, table, where, 0, bulk)
