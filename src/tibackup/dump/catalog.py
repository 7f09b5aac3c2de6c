"""List what there is to dump: databases, tables, views, their columns and keys (stage 1 of the pipeline)."""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import TYPE_CHECKING

from tibackup.dump.conn import DB, quote_ident, quote_string
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import UsageError
from tibackup.record import record

if TYPE_CHECKING:
    from tibackup.dump.columnfilter import ColumnFilter


class Kind(StrEnum):
    """How Dumpling writes a column's values (its sql_type classes)."""

    NUMBER = "number"  # the server's text, bare
    STRING = "string"  # quoted and escaped
    BYTES = "bytes"  # x'hex' in SQL
    BIT = "bit"  # bytes, but the server hands BIT out as a number


_NUMBER_TYPES = frozenset(
    {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "float", "double", "real",
     "decimal", "numeric", "fixed", "bool", "boolean", "double precision"}
)  # fmt: skip
_BYTES_TYPES = frozenset(
    {"blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary", "long", "geometry", "point",
     "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"}
)  # fmt: skip
_INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})


def kind_of(data_type: str) -> Kind:
    data_type = data_type.lower()
    if data_type in _NUMBER_TYPES:
        return Kind.NUMBER
    if data_type in _BYTES_TYPES:
        return Kind.BYTES
    if data_type == "bit":
        return Kind.BIT
    return Kind.STRING


@record
class Column:
    """One column of a table, as information_schema describes it."""

    name: str
    data_type: str  # lower case, e.g. 'varchar'
    column_type: str  # e.g. 'bit(12)', 'int(10) unsigned'
    generated: bool
    charset: str | None = None
    nullable: bool = True

    @property
    def kind(self) -> Kind:
        return kind_of(self.data_type)

    @property
    def is_integer(self) -> bool:
        return self.data_type in _INTEGER_TYPES

    @property
    def bit_width(self) -> int:
        """BIT(M) → M (1 when no width is given)."""
        digits = "".join(ch for ch in self.column_type.split("(", 1)[-1] if ch.isdigit())
        return int(digits) if "(" in self.column_type and digits else 1


@record
class Table:
    """A base table, view or sequence to dump, with what chunking and rendering need to know of it."""

    schema: str
    name: str
    is_view: bool
    columns: tuple[Column, ...]
    key: tuple[Column, ...]  # primary key, else a unique NOT NULL key; () when there is none
    est_rows: int
    avg_row_length: int
    chunk_field: Column | None = None  # the integer column -r splits on, picked as Dumpling picks it
    is_sequence: bool = False  # MariaDB/TiDB sequences: a schema file, no data (--no-sequences=false)
    partition: str = ""  # --partitions: read only this partition of the table
    kept: tuple[str, ...] | None = None  # --column-filter: the columns dumped (None: every one)

    @property
    def source(self) -> str:
        """What its rows are selected from: ``db``.``t`` [PARTITION (``p``)]."""
        name = f"{quote_ident(self.schema)}.{quote_ident(self.name)}"
        return f"{name} PARTITION ({quote_ident(self.partition)})" if self.partition else name

    @property
    def selected_columns(self) -> tuple[Column, ...]:
        """Generated columns are computed on load, so they are never dumped (as Dumpling); with
        --column-filter, only the columns it keeps."""
        return tuple(
            c for c in self.columns if not c.generated and (self.kept is None or c.name in self.kept)
        )

    @property
    def has_generated(self) -> bool:
        return any(c.generated for c in self.columns)


@record
class Catalog:
    """Everything a dump selected: its schemas and their tables."""

    schemas: tuple[str, ...]  # every selected schema, in order, even if it has no selected table
    tables: tuple[Table, ...]  # base tables and views, sorted by schema then name

    @property
    def base_tables(self) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if not t.is_view and not t.is_sequence)

    @property
    def views(self) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.is_view)


def _in_list(names: list[str]) -> str:
    return ", ".join(quote_string(n) for n in names)


def _pick_key(
    indexes: dict[str, list[tuple[str, bool, bool, int]]], columns: dict[str, Column]
) -> tuple[Column, ...]:
    """The primary key, else the unique index with all columns NOT NULL and the fewest columns."""
    if "PRIMARY" in indexes:
        return tuple(columns[name] for name, *_ in indexes["PRIMARY"] if name in columns)
    candidates = [
        cols
        for cols in indexes.values()
        if all(unique and not nullable for _, unique, nullable, _ in cols)
        and all(n in columns for n, *_ in cols)
    ]
    if not candidates:
        return ()
    best = min(candidates, key=len)
    return tuple(columns[name] for name, *_ in best)


def _pick_chunk_field(
    indexes: dict[str, list[tuple[str, bool, bool, int]]], columns: dict[str, Column]
) -> Column | None:
    """Dumpling's ``getNumericIndex``: the first column of the primary key if it is an integer, else of
    the unique key with the fewest columns, else of the index with the highest cardinality (each only
    when that column is an integer)."""

    def first_integer(cols: list[tuple[str, bool, bool, int]]) -> Column | None:
        column = columns.get(cols[0][0]) if cols else None
        return column if column is not None and column.is_integer else None

    if first_integer(indexes.get("PRIMARY", [])):
        return first_integer(indexes["PRIMARY"])
    unique = [cols for cols in indexes.values() if cols and cols[0][1] and first_integer(cols)]
    if unique:
        return first_integer(min(unique, key=len))
    others = [cols for cols in indexes.values() if first_integer(cols)]
    return first_integer(max(others, key=lambda cols: cols[0][3])) if others else None


def check_partitions(db: DB, tables: tuple[Table, ...], wanted: tuple[str, ...]) -> None:
    """--partitions names partitions every dumped table must have: a typo fails, it does not dump nothing."""
    for table in tables:
        rows = db.query_text(
            "SELECT PARTITION_NAME FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = "
            f"{quote_string(table.schema)} AND TABLE_NAME = {quote_string(table.name)} AND PARTITION_NAME IS NOT NULL "
            "ORDER BY PARTITION_ORDINAL_POSITION",
            "listing partitions",
        )
        have = [name for (name,) in rows if name]
        missing = [p for p in wanted if p.lower() not in {h.lower() for h in have}]
        if missing:
            which = f"its partitions are {', '.join(have)}" if have else "it is not partitioned"
            raise UsageError(
                f"--partitions: table {table.schema}.{table.name} has no partition {', '.join(missing)} ({which}); "
                "name existing partitions or narrow the tables with -T/-f"
            )


def _check_named_objects_exist(table_filter: TableFilter, existing: list[str]) -> None:
    """-B and -T name objects explicitly: a typo must fail, not dump nothing (as Dumpling)."""
    missing = [d for d in table_filter.databases or () if d not in existing]
    if missing:
        raise UsageError(f"database {', '.join(missing)} does not exist (-B); check the name and its case")


def load_catalog(
    db: DB,
    table_filter: TableFilter,
    *,
    include_views: bool,
    include_sequences: bool = False,
    partitions: tuple[str, ...] = (),
    column_filter: ColumnFilter | None = None,
) -> Catalog:
    """Views are listed with ``include_views`` or when named in -T (Dumpling writes their schema files
    then); sequences with ``include_sequences`` (Dumpling's --no-sequences=false)."""
    schema_rows = db.query_text("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", "listing databases")
    existing = [name for (name,) in schema_rows if name is not None]
    _check_named_objects_exist(table_filter, existing)
    schemas = sorted(name for name in existing if table_filter.match_schema(name))
    if not schemas:
        return Catalog((), ())
    in_schemas = _in_list(schemas)

    tables_raw = db.query_text(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS, AVG_ROW_LENGTH FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({in_schemas})",
        "listing tables",
    )
    columns_raw = db.query_text(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA, CHARACTER_SET_NAME, IS_NULLABLE "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({in_schemas}) "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        "listing columns",
    )
    index_raw = db.query_text(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, NULLABLE, CARDINALITY "
        f"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({in_schemas}) "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        "listing keys",
    )

    columns: dict[tuple[str, str], dict[str, Column]] = defaultdict(dict)
    for schema, table, name, data_type, column_type, extra, charset, is_nullable in columns_raw:
        assert schema is not None and table is not None and name is not None
        columns[(schema, table)][name] = Column(
            name=name,
            data_type=(data_type or "").lower(),
            column_type=(column_type or "").lower(),
            generated="GENERATED" in (extra or "").upper(),
            charset=charset,
            nullable=(is_nullable or "YES") == "YES",
        )
    indexes: dict[tuple[str, str], dict[str, list[tuple[str, bool, bool, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for schema, table, index, non_unique, column, nullable, cardinality in index_raw:
        assert schema is not None and table is not None and index is not None and column is not None
        indexes[(schema, table)][index].append(
            (column, non_unique == "0", (nullable or "") == "YES", int(cardinality or 0))
        )

    wanted = set(table_filter.tables or ())
    selected: list[Table] = []
    for schema, name, table_type, rows, avg in tables_raw:
        assert schema is not None and name is not None
        kind = (table_type or "").upper()
        is_view, is_sequence = kind == "VIEW", kind == "SEQUENCE"
        if kind not in ("BASE TABLE", "VIEW", "SYSTEM VERSIONED", "SEQUENCE"):
            continue  # temporary tables: not part of a Dumpling dump
        if (is_view and not include_views and (schema, name) not in wanted) or (
            is_sequence and not include_sequences
        ):
            continue
        if not table_filter.match_table(schema, name):
            continue
        wanted.discard((schema, name))
        cols = columns.get((schema, name), {})
        selected.append(
            Table(
                schema=schema,
                name=name,
                is_view=is_view,
                is_sequence=is_sequence,
                columns=tuple(cols.values()),
                key=() if is_view or is_sequence else _pick_key(indexes.get((schema, name), {}), cols),
                est_rows=int(rows or 0),
                avg_row_length=int(avg or 0),
                chunk_field=None
                if is_view or is_sequence
                else _pick_chunk_field(indexes.get((schema, name), {}), cols),
                kept=None
                if column_filter is None or is_view or is_sequence
                else column_filter.kept(schema, name, [c.name for c in cols.values() if not c.generated]),
            )
        )
    if wanted:
        names = ", ".join(f"{s}.{t}" for s, t in sorted(wanted))
        raise UsageError(f"table {names} does not exist (-T); check the name and its case")
    selected.sort(key=lambda t: (t.schema, t.name))
    catalog = Catalog(tuple(schemas), tuple(selected))
    if partitions:
        check_partitions(db, catalog.base_tables, partitions)
    return catalog
