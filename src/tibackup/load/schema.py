"""Execute (schemas): databases and tables before the data, views after it, and the checks around them.

A database or table that already exists is kept as it is (Lightning does the same), so a rerun after a
crash finds its own tables and goes on; a table holding rows is refused before anything is written
unless --on-duplicate says what to do with colliding rows. Views come last, over Dumpling's stand-in
tables (which let views refer to views in any order).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from tibackup.dump.conn import DB, quote_ident, quote_string
from tibackup.errors import DatabaseError
from tibackup.load.plan import LoadPlan
from tibackup.load.read import CheckedReader, VerifyFailed, decompressed, manifest_first, split_statements
from tibackup.load.source import BackupFile, Source

log = logging.getLogger("tibackup.load")


class TargetNotEmpty(DatabaseError):
    reason = "TargetNotEmpty"


def existing_objects(db: DB, schemas: set[str]) -> dict[tuple[str, str], str]:
    """(schema, name) → 'BASE TABLE' | 'VIEW' | … for every table and view in ``schemas``; a schema
    that exists itself appears as (schema, '')."""
    if not schemas:
        return {}
    names = ", ".join(quote_string(s) for s in sorted(schemas))
    found: dict[tuple[str, str], str] = {
        (s or "", ""): "SCHEMA"
        for (s,) in db.query_text(
            f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({names})",
            "listing the target's databases",
        )
    }
    for schema, table, kind in db.query_text(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({names})",
        "listing the target's tables",
    ):
        found[(schema or "", table or "")] = kind or ""
    return found


def refuse_non_empty(db: DB, tables: list[tuple[str, str]], flag: str = "--on-duplicate") -> None:
    """Raise TargetNotEmpty naming every table of ``tables`` that holds a row."""
    full = [
        f"{schema}.{table}"
        for schema, table in tables
        if db.query(
            f"SELECT 1 FROM {quote_ident(schema)}.{quote_ident(table)} LIMIT 1", "checking the target"
        )
    ]
    if full:
        shown = ", ".join(full[:10]) + (f" and {len(full) - 10} more" if len(full) > 10 else "")
        raise TargetNotEmpty(
            f"{len(full)} target table(s) already hold rows: {shown}; nothing was loaded. Empty or drop "
            f"them, or use {flag} replace (the backup's rows win) or {flag} ignore (the target's rows stay)"
        )


def file_statements(source: Source, plan: LoadPlan, file: BackupFile) -> list[bytes]:
    """The statements of a (small) schema file, checked against the manifest before any runs."""
    reader = CheckedReader(io.BytesIO(source.read(file.name)), file.name, want=plan.expected.get(file.name))
    split = split_statements(decompressed(reader, file.compression), name=file.name)
    statements = [sql for _, sql in manifest_first(split, reader)]
    reader.check()
    return statements


def create_schemas(
    db: DB,
    source: Source,
    plan: LoadPlan,
    existing: dict[tuple[str, str], str],
    table_sql: Callable[[DB, list[BackupFile]], dict[str, list[bytes]]] | None = None,
) -> tuple[int, int]:
    """Create the databases and tables that are not there yet; return how many of each.
    ``table_sql``: the statements that create the given tables' files (default: the files' own)."""
    databases = tables = 0
    pending = [f for f in plan.tables if (f.db, f.table) not in existing]
    if table_sql is not None:
        statements = table_sql(db, pending)
    else:
        statements = {f.name: file_statements(source, plan, f) for f in pending}
    for file in plan.databases:
        if (file.db, "") not in existing:
            _run(db, file, file_statements(source, plan, file))
            existing[(file.db, "")] = "SCHEMA"
            databases += 1
    for file in plan.tables:
        if (file.db, "") not in existing:
            db.execute(
                f"CREATE DATABASE IF NOT EXISTS {quote_ident(file.db)}", f"creating database {file.db}"
            )
            existing[(file.db, "")] = "SCHEMA"
        if (file.db, file.table) in existing:
            continue  # kept as it is: a rerun's own table, or an empty one the user made
        db.execute(f"USE {quote_ident(file.db)}", f"selecting database {file.db}")
        _run(db, file, statements[file.name])
        tables += 1
    missing = (
        {(f.db, f.table) for f in plan.data}
        - {key for key in existing}
        - {(f.db, f.table) for f in plan.tables}
    )
    if missing:
        schema, table = sorted(missing)[0]
        raise VerifyFailed(
            f"the backup has data for {schema}.{table} but no schema file for it, and the target has no "
            "such table: create the table first, or load a backup with its schema files"
        )
    return databases, tables


def create_views(db: DB, source: Source, plan: LoadPlan) -> int:
    for file in plan.views:
        db.execute(f"USE {quote_ident(file.db)}", f"selecting database {file.db}")
        _run(db, file, file_statements(source, plan, file))  # drops the stand-in, creates the view
    return len(plan.views)


def _run(db: DB, file: BackupFile, statements: list[bytes]) -> None:
    for sql in statements:
        db.execute_bytes(sql, f"running {file.name}")


def check_rows(db: DB, plan: LoadPlan, loaded: dict[tuple[str, str], int] | None = None) -> None:
    """Every table holds exactly the rows the manifest counted (run when the tables started empty).
    ``loaded``: the rows this run's statements inserted per table, as the server counted them — when
    the load started from empty tables and nothing before it (no resume), that is the table's count,
    and no ``COUNT(*)`` (a scan of the whole table) is needed."""
    for (schema, table), want in sorted((plan.table_rows or {}).items()):
        if (schema, table) in plan.view_names:
            continue
        if loaded is not None:
            got = loaded.get((schema, table), 0)
        else:
            got = int(db.scalar(f"SELECT COUNT(*) FROM {quote_ident(schema)}.{quote_ident(table)}") or 0)
        if got != want:
            raise VerifyFailed(
                f"{schema}.{table} holds {got} rows after the load but the backup's manifest counts {want}: "
                "the backup or the load is not whole; check the log and run the load again"
            )
