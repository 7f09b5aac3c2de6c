"""Schema files, exactly as Dumpling writes them: each starts with ``SCHEMA_HEADER`` (foreign key checks
off, so a child table's schema loads before its parent's).

``{db}-schema-create.sql``   header + SHOW CREATE DATABASE + ';'
``{db}.{t}-schema.sql``      header + SHOW CREATE TABLE + ';'
views: ``{db}.{v}-schema.sql`` holds a stand-in table with the view's columns (so data loaders that need
a table find one) and ``{db}.{v}-schema-view.sql`` drops it and creates the real view with the
session charset the view was defined under.
"""

from __future__ import annotations

from tibackup.dump import tidb
from tibackup.dump.catalog import Table
from tibackup.dump.checksum import ManifestChecksum
from tibackup.dump.config import Compression
from tibackup.dump.conn import DB, quote_ident
from tibackup.dump.naming import (
    schema_create_name,
    sequence_schema_name,
    table_schema_name,
    view_schema_name,
)
from tibackup.dump.writer import SCHEMA_HEADER, FileRecord, write_whole_file
from tibackup.storage.base import Storage


def _text(value: bytes | None) -> bytes:
    return value if value is not None else b""


def database_schema(db: DB, schema: str) -> bytes:
    rows = db.query(f"SHOW CREATE DATABASE {quote_ident(schema)}", f"reading the schema of database {schema}")
    return SCHEMA_HEADER + _text(rows[0][1]) + b";\n"


def table_schema(db: DB, table: Table) -> bytes:
    rows = db.query(
        f"SHOW CREATE TABLE {quote_ident(table.schema)}.{quote_ident(table.name)}",
        f"reading the schema of {table.schema}.{table.name}",
    )
    create = _text(rows[0][1])
    if table.kept is not None:  # --column-filter: the table as its data files hold it
        from tibackup.dump.columnfilter import project_create_table  # only then (start-up)

        create = project_create_table(create.decode("utf-8", "surrogateescape"), table.kept).encode(
            "utf-8", "surrogateescape"
        )
    return SCHEMA_HEADER + create + b";\n"


def view_schemas(db: DB, view: Table) -> tuple[bytes, bytes]:
    """(the stand-in table file, the view file)."""
    name = quote_ident(view.name).encode("utf-8")
    fields = db.query(
        f"SHOW FIELDS FROM {quote_ident(view.schema)}.{quote_ident(view.name)}",
        f"reading the columns of view {view.schema}.{view.name}",
    )
    columns = b",\n".join(quote_ident(_text(f[0]).decode("utf-8")).encode("utf-8") + b" int" for f in fields)
    fake_table = SCHEMA_HEADER + b"CREATE TABLE " + name + b"(\n" + columns + b"\n)ENGINE=MyISAM;\n"
    rows = db.query(
        f"SHOW CREATE VIEW {quote_ident(view.schema)}.{quote_ident(view.name)}",
        f"reading the definition of view {view.schema}.{view.name}",
    )
    create, charset, collation = _text(rows[0][1]), _text(rows[0][2]), _text(rows[0][3])
    view_sql = b"".join(
        [
            SCHEMA_HEADER,
            b"DROP TABLE IF EXISTS " + name + b";\n",
            b"DROP VIEW IF EXISTS " + name + b";\n",
            b"SET @PREV_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT;\n",
            b"SET @PREV_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS;\n",
            b"SET @PREV_COLLATION_CONNECTION=@@COLLATION_CONNECTION;\n",
            b"SET character_set_client = " + charset + b";\n",
            b"SET character_set_results = " + charset + b";\n",
            b"SET collation_connection = " + collation + b";\n",
            create + b";\n",
            b"SET character_set_client = @PREV_CHARACTER_SET_CLIENT;\n",
            b"SET character_set_results = @PREV_CHARACTER_SET_RESULTS;\n",
            b"SET collation_connection = @PREV_COLLATION_CONNECTION;\n",
        ]
    )
    return fake_table, view_sql


def sequence_schema(db: DB, sequence: Table, *, on_tidb: bool) -> bytes:
    """Dumpling's ``ShowCreateSequence``: the CREATE SEQUENCE and a SETVAL to the next value not cached."""
    source = f"{quote_ident(sequence.schema)}.{quote_ident(sequence.name)}"
    rows = db.query(
        f"SHOW CREATE SEQUENCE {source}", f"reading the schema of sequence {sequence.schema}.{sequence.name}"
    )
    if on_tidb:
        next_value = tidb.sequence_next_value(db, sequence.schema, sequence.name)
    else:  # MariaDB
        value = db.scalar(f"SELECT NEXT_NOT_CACHED_VALUE FROM {source}", f"reading sequence {sequence.name}")
        next_value = int(value or b"0")
    setval = f"SELECT SETVAL({quote_ident(sequence.name)},{next_value});\n".encode()
    return SCHEMA_HEADER + _text(rows[0][1]) + b";\n" + setval


def write_database_schemas(
    db: DB,
    storage: Storage,
    schemas: tuple[str, ...],
    tables: tuple[Table, ...],
    compression: Compression,
    *,
    dump_empty_database: bool,
    checksum: ManifestChecksum = ManifestChecksum.XXH128,
) -> list[FileRecord]:
    """``{db}-schema-create.sql`` of every database that has a table or view to dump (or every one,
    with --dump-empty-database)."""
    with_tables = {t.schema for t in tables}
    records: list[FileRecord] = []
    for schema in schemas:
        if schema in with_tables or dump_empty_database:
            name = schema_create_name(schema) + compression.suffix
            data = database_schema(db, schema)
            records.append(write_whole_file(storage, name, data, compression, schema, checksum=checksum))
    return records


def table_schema_files(db: DB, table: Table, *, on_tidb: bool = False) -> dict[str, bytes]:
    """A table's ``-schema.sql``; a view's stand-in table and ``-schema-view.sql``; a sequence's
    ``-schema-sequence.sql`` (names without the compression suffix)."""
    if table.is_sequence:
        return {sequence_schema_name(table.schema, table.name): sequence_schema(db, table, on_tidb=on_tidb)}
    if table.is_view:
        fake, view = view_schemas(db, table)
        return {
            table_schema_name(table.schema, table.name): fake,
            view_schema_name(table.schema, table.name): view,
        }
    return {table_schema_name(table.schema, table.name): table_schema(db, table)}
