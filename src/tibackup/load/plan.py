"""Plan: from the backup's files to what the load does, in order — databases, tables, data, views.

The plan also holds what the files must be (the manifest's size and checksum of each, and the rows of
each table), and the load's identity: the key of its checkpoint, the same for a rerun with the same
source, backup and options, different for anything else.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from tibackup.dump.checksum import entry_checksum
from tibackup.dump.metadata import MANIFEST_NAME, METADATA_NAME
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import StorageError, UsageError
from tibackup.load.checkpoint import SCHEMA as CHECKPOINT_SCHEMA
from tibackup.load.config import LoadConfig
from tibackup.load.read import Expected, VerifyFailed
from tibackup.load.source import BackupFile, FileKind, Source, classify, template_pattern

log = logging.getLogger("tibackup.load")

# Never loaded: the server's own schemas, and the loader's checkpoint (a dump of a server that was
# being loaded into must not overwrite the checkpoint of the load running now).
SYSTEM_SCHEMAS = frozenset(
    {"mysql", "sys", "information_schema", "performance_schema", "metrics_schema", "inspection_schema"}
    | {CHECKPOINT_SCHEMA}
)


@dataclass
class LoadPlan:
    load_id: str
    databases: list[BackupFile]
    tables: list[BackupFile]  # incl. the stand-in tables of views
    data: list[BackupFile]  # in load order: data_order
    views: list[BackupFile]
    expected: dict[str, Expected] = field(default_factory=dict)  # name → what the manifest says
    table_rows: dict[tuple[str, str], int] | None = None  # (db, table) → rows, from the manifest

    @property
    def table_names(self) -> list[tuple[str, str]]:
        names = {(f.db, f.table) for f in (*self.tables, *self.data)}
        return sorted(names - {(v.db, v.table) for v in self.views})

    @property
    def view_names(self) -> set[tuple[str, str]]:
        return {(v.db, v.table) for v in self.views}

    @property
    def data_bytes(self) -> int:
        return sum(f.size for f in self.data)


def plan_load(source: Source, config: LoadConfig) -> LoadPlan:
    listing = {info.name: info.size for info in source.listing()}
    if not listing:
        raise StorageError(
            f"no backup at {source.url}: the folder is empty or does not exist; check -d (a backup folder, "
            "s3://bucket/prefix/ or a .tgz archive)"
        )
    metadata = b""
    if METADATA_NAME in listing:
        metadata = source.read(METADATA_NAME)
    elif not config.allow_incomplete:
        raise StorageError(
            f"{source.url} has no 'metadata' file, so it is not a finished backup (the dump stopped "
            "or is still running): use a complete backup, or --allow-incomplete to load it anyway",
            reason="IncompleteBackup",
        )
    expected: dict[str, Expected] = {}
    table_rows: dict[tuple[str, str], int] | None = None
    if MANIFEST_NAME in listing:
        expected, table_rows = _read_manifest(source.read(MANIFEST_NAME))
        _check_listing(listing, expected, source.url)

    rule = config.table_filter
    data_names = template_pattern(config.filename_template)
    files = [classify(name, size, data_names) for name, size in sorted(listing.items())]
    chosen = [f for f in files if f.kind is FileKind.DATABASE and _wanted_db(f.db, rule)]
    chosen += [f for f in files if f.kind not in (FileKind.DATABASE, FileKind.OTHER) and _wanted(f, rule)]
    for f in files:
        if f.kind is FileKind.OTHER and f.name not in (METADATA_NAME, MANIFEST_NAME):
            # tibackup's own bookkeeping beside the dump (the backup folder's claims) is expected there.
            own = f.name.startswith("tibackup-") and "/" not in f.name
            log.log(logging.DEBUG if own else logging.WARNING, "skipping %s: not a file of Dumpling's layout", f.name)
    _refuse_nothing_to_load(
        files, chosen, metadata_found=METADATA_NAME in listing, config=config, url=source.url
    )
    if not chosen:
        log.warning("the backup at %s holds no database and no table: there is nothing to load", source.url)
    if table_rows is not None:
        table_rows = {key: rows for key, rows in table_rows.items() if _wanted_key(key, rule)}
    identity = json.dumps(
        [source.url, hashlib.sha256(metadata).hexdigest(), list(rule.rules) if rule else None,
         config.on_duplicate.value],
    )  # fmt: skip
    return LoadPlan(
        load_id=hashlib.sha256(identity.encode()).hexdigest()[:32],
        databases=[f for f in chosen if f.kind is FileKind.DATABASE],
        tables=[f for f in chosen if f.kind is FileKind.TABLE],
        data=data_order([f for f in chosen if f.kind is FileKind.DATA]),
        views=[f for f in chosen if f.kind is FileKind.VIEW],
        expected=expected,
        table_rows=table_rows,
    )


def _refuse_nothing_to_load(
    files: list[BackupFile], chosen: list[BackupFile], *, metadata_found: bool, config: LoadConfig, url: str
) -> None:
    """A load that would load nothing is a mistake, not a success: a filter that matches none of the
    backup's tables (a typo would otherwise end "complete, 0 rows"), or a folder with no file of
    Dumpling's layout at all. A finished dump of nothing (``metadata`` alone) loads as the nothing it is."""
    layout = [f for f in files if f.kind is not FileKind.OTHER and f.db.lower() not in SYSTEM_SCHEMAS]
    tables_in = any(f.kind is not FileKind.DATABASE for f in layout)  # the backup has tables or views
    if (
        config.table_filter is not None
        and layout
        and not any(f.kind is not FileKind.DATABASE or not tables_in for f in chosen)
    ):
        names = sorted({f"{f.db}.{f.table}" for f in layout if f.table} or {f.db for f in layout})
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise UsageError(
            f"the table filter ({config.names.table_filter} {', '.join(config.table_filter.rules)}) matches "
            f"nothing in {url}, which holds {shown}: nothing was loaded; fix the rules",
            reason="FilterMatchesNothing",
        )
    if not chosen and not layout and not metadata_found:
        others = sorted(f.name for f in files)
        raise StorageError(
            f"no backup at {url}: it holds no file of Dumpling's layout (e.g. {', '.join(others[:3])}); "
            "check -d (a backup folder, s3://bucket/prefix/ or a .tgz archive)",
            reason="NoBackupFiles",
        )


def data_order(files: list[BackupFile]) -> list[BackupFile]:
    """The biggest table first, each table's files together (biggest first): the big tables' data is
    in early, so their index builds — the long ones — run while the smaller tables load, and the load
    ends on small tables' short builds rather than on one long build with the other sessions idle."""
    sizes: dict[tuple[str, str], int] = {}
    for f in files:
        sizes[(f.db, f.table)] = sizes.get((f.db, f.table), 0) + f.size
    return sorted(files, key=lambda f: (-sizes[(f.db, f.table)], f.db, f.table, -f.size, f.name))


def _wanted_db(db: str, rule: TableFilter | None) -> bool:
    if db.lower() in SYSTEM_SCHEMAS:
        return False
    return rule is None or rule.match_schema(db)


def _wanted(f: BackupFile, rule: TableFilter | None) -> bool:
    return _wanted_key((f.db, f.table), rule)


def _wanted_key(key: tuple[str, str], rule: TableFilter | None) -> bool:
    return key[0].lower() not in SYSTEM_SCHEMAS and (rule is None or rule.match_table(*key))


def _read_manifest(raw: bytes) -> tuple[dict[str, Expected], dict[tuple[str, str], int]]:
    try:
        doc = json.loads(raw)
        expected = {str(f["name"]): _expected(f) for f in doc["files"]}
        rows: dict[tuple[str, str], int] = {}
        for f in doc["files"]:
            if f.get("table"):
                key = (str(f["schema"]), str(f["table"]))
                rows[key] = rows.get(key, 0) + int(f.get("rows") or 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise VerifyFailed(
            f"the backup's {MANIFEST_NAME} cannot be read ({exc}): the backup is damaged; restore from "
            "another backup"
        ) from None
    return expected, rows


def _expected(entry: dict[str, Any]) -> Expected:
    """A manifest file entry's size and checksum (an entry without a known checksum: the size only)."""
    checksum = entry_checksum(entry)
    return Expected(int(entry["size"]), *checksum) if checksum else Expected(int(entry["size"]))


def _check_listing(listing: dict[str, int], expected: dict[str, Expected], url: str) -> None:
    """Before anything is written: every file the manifest lists is there, at its size."""
    missing = sorted(name for name in expected if name not in listing)
    if missing:
        raise VerifyFailed(
            f"{url} lacks {len(missing)} file(s) its manifest lists, e.g. {', '.join(missing[:3])}: the "
            "backup is incomplete; restore from another backup"
        )
    for name, want in sorted(expected.items()):
        if listing[name] != want.size:
            raise VerifyFailed(
                f"{name} has {listing[name]} bytes but the manifest says {want.size}: the backup is "
                "damaged; restore from another backup"
            )
