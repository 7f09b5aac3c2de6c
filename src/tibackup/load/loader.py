"""One load, top to bottom: source → plan → claim → schemas → data (each table's secondary indexes as
soon as its data is in) → the secondary indexes still missing → views → verify → clean up.

``run_load`` is the whole flow (config in, result out, no Kubernetes; a Restore run calls it as a
Backup run calls ``run_dump``). Data statements load over ``config.threads`` sessions, each in a
transaction with its checkpoint row, so a rerun after any crash resumes exactly where the committed
work ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from tibackup.dump.conn import DB, quote_ident
from tibackup.dump.progress import Progress
from tibackup.errors import Interrupted
from tibackup.load.checkpoint import CLAIMED, Checkpoint, claim_name
from tibackup.load.config import LoadConfig, OnDuplicate
from tibackup.load.execute import DataLoader, open_session, prepare_session
from tibackup.load.indexes import DeferredIndexes
from tibackup.load.plan import LoadPlan, plan_load
from tibackup.load.privileges import check_privileges, may, needed
from tibackup.load.progress import LoadProgress
from tibackup.load.schema import check_rows, create_schemas, create_views, existing_objects, refuse_non_empty
from tibackup.load.source import Source, open_source
from tibackup.load.stopping import MainSession
from tibackup.units import human_size

log = logging.getLogger("tibackup.load")


@dataclass
class LoadResult:
    source: str
    started: datetime
    finished: datetime
    files: int
    rows: int
    bytes: int
    tables: int
    views: int
    resumed: bool
    load_id: str  # the key of its checkpoint rows (deleted once the load finished)
    already_loaded: bool = False  # an earlier run of this load had finished: nothing was done


def run_load(
    config: LoadConfig, source: Source | None = None, progress: Progress | None = None
) -> LoadResult:
    source = source or open_source(config.source, config.s3)
    plan = plan_load(source, config)
    progress = progress or Progress()
    progress.total_rows = sum((plan.table_rows or {}).values())
    if isinstance(progress, LoadProgress):
        progress.total_bytes, progress.total_files = plan.data_bytes, len(plan.data)
    main = MainSession(config.connection, config.params)  # its statements stop on Ctrl-C/SIGTERM too
    sessions: list[DB] = []
    try:
        started = datetime.now()
        server = main.server_info()
        log.info(
            "loading %d table(s), %d view(s) (%d data files, %s) from %s into %s %s at %s:%d",
            len(plan.table_names), len(plan.views), len(plan.data), human_size(plan.data_bytes), source.url,
            server.type.value, server.version, config.connection.host, config.connection.port,
        )  # fmt: skip
        schemas = {name[0] for name in plan.table_names} | {f.db for f in plan.databases}
        existing = existing_objects(main, schemas)
        grants = check_privileges(main, needed(_needs(plan, config, existing), config.checkpoint))
        checkpoint = Checkpoint(plan.load_id) if config.checkpoint else None
        done = checkpoint.prepare(main) if checkpoint else {}
        if checkpoint and checkpoint.finished_rows is not None:
            if _still_loaded(main, plan, existing):
                log.debug(
                    "already loaded: an earlier run of this load (checkpoint %s) finished; nothing to do",
                    plan.load_id,
                )
                return LoadResult(
                    source.url, started, datetime.now(), files=0, rows=checkpoint.finished_rows, bytes=0,
                    tables=0, views=0, resumed=False, load_id=plan.load_id, already_loaded=True,
                )  # fmt: skip
            checkpoint.forget_finished(main)  # its tables were dropped or emptied since: load afresh
            done = {}
        if done:
            log.info("resuming an earlier run of this load (checkpoint %s)", plan.load_id)

        # Before anything is written: no table of someone else's may hold rows (unless told how).
        if config.on_duplicate is OnDuplicate.ERROR:
            refuse_non_empty(
                main,
                [
                    name for name in plan.table_names
                    if existing.get(name) == "BASE TABLE" and CLAIMED not in done.get(claim_name(*name), set())
                ],
                config.names.on_duplicate,
            )  # fmt: skip
        if checkpoint and plan.table_names:
            main.execute(checkpoint.claim_sql(plan.table_names), "recording the load's tables")

        prepare_session(main, config)
        indexes = DeferredIndexes(source, plan, config, checkpoint, done)
        indexes.alterable = {db for db in schemas if may(grants, "ALTER", db)}
        _, tables = create_schemas(main, source, plan, existing, indexes.create_statements)
        indexes.prepare(main)
        for _ in range(config.threads):
            sessions.append(open_session(config.connection, config))
        data = DataLoader(sessions, source, plan, config, checkpoint, done, progress, indexes)
        data.run(plan.data)  # each table's keys are built once its last file is in
        for session in sessions:  # the remaining index builds take sessions of their own
            session.close()
        sessions.clear()
        indexes.build(main)  # every key still missing of the tables it created, before the finished mark
        views = create_views(main, source, plan)
        if config.on_duplicate is OnDuplicate.ERROR and plan.table_rows is not None:
            check_rows(main, plan, None if done else data.table_rows)  # a resumed load counts the tables
        if checkpoint:
            checkpoint.finish(main, progress.rows)
        return LoadResult(
            source.url, started, datetime.now(), files=len(plan.data), rows=progress.rows,
            bytes=progress.bytes, tables=tables, views=views, resumed=bool(done), load_id=plan.load_id,
        )  # fmt: skip
    except KeyboardInterrupt:
        raise Interrupted(
            "the load was interrupted; what it committed stays: run the same command again to resume"
        ) from None
    finally:
        for db in (*sessions, main):
            db.close()


def _still_loaded(db: DB, plan: LoadPlan, existing: dict[tuple[str, str], str]) -> bool:
    """The tables a finished load left are still there: every table exists, every table it loaded
    rows into holds a row (dropped or emptied since: the load runs again)."""
    if any(existing.get(name) != "BASE TABLE" for name in plan.table_names):
        return False
    loaded = {(f.db, f.table) for f in plan.data}
    return all(
        db.query(f"SELECT 1 FROM {quote_ident(s)}.{quote_ident(t)} LIMIT 1", "checking the target")
        for s, t in sorted(loaded & set(plan.table_names))
    )


def _needs(plan: LoadPlan, config: LoadConfig, existing: dict[tuple[str, str], str]) -> dict[str, set[str]]:
    """Target database → what it needs beyond INSERT: CREATE where it or a table is missing, DELETE
    for REPLACE, CREATE VIEW and DROP (of the stand-in table) for views."""
    out: dict[str, set[str]] = {f.db: set() for f in plan.databases}
    for db, table in plan.table_names:
        extra = out.setdefault(db, set())
        if (db, "") not in existing or (db, table) not in existing:
            extra.add("CREATE")
        if config.on_duplicate is OnDuplicate.REPLACE:
            extra.add("DELETE")
    for view in plan.views:
        out.setdefault(view.db, set()).update({"CREATE VIEW", "DROP"})
    for f in plan.databases:
        if (f.db, "") not in existing:
            out[f.db].add("CREATE")
    return out
