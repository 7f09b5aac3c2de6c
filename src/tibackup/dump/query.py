"""``--sql``: one query's result dumped as an anonymous table, as Dumpling's ``dumpSQL`` does.

Dumpling writes it as CSV only (``result.000000000.csv`` by its anonymous template ``result.{{.Index}}``),
with a header of the result's column names, numbers bare and everything else quoted; no schema files;
an empty result writes no data file; a query the server refuses fails the dump with the server's error.
"""

from __future__ import annotations

from tibackup.dump.catalog import Column, Table
from tibackup.dump.chunks import Chunk
from tibackup.dump.conn import DB

# MySQL protocol type codes written bare (Dumpling's number types): DECIMAL, TINY, SHORT, LONG, FLOAT,
# DOUBLE, LONGLONG, INT24, NEWDECIMAL. BIT (16) comes as raw bytes; the rest are strings.
_NUMBER_CODES = frozenset({0, 1, 2, 3, 4, 5, 8, 9, 246})
_BIT_CODE = 16


def query_chunk(db: DB, sql: str) -> Chunk:
    """The query as the one chunk of a table without a name, with its result's columns."""
    sql = sql.strip().rstrip(";").rstrip()
    columns = tuple(
        Column(
            name, "decimal" if code in _NUMBER_CODES else "bit" if code == _BIT_CODE else "varchar", "", False
        )
        for name, code in db.result_columns(sql, "running --sql")
    )
    return Chunk(Table("", "", False, columns, (), 0, 0), 0, "", (), query=sql)
