"""What one load is asked to do, as plain values (filled by ``tibackup load``'s flags or a Restore)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tibackup.dump.config import Connection, CSVOptions
from tibackup.dump.tablefilter import TableFilter
from tibackup.storage.options import S3Options

# Beside the dump's own SET NAMES: keep a 0 in an AUTO_INCREMENT column a 0 (as myloader does), and no
# strict mode, so values the source server accepted ('0000-00-00', …) load as they were dumped.
DEFAULT_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO"


class OnDuplicate(StrEnum):
    """Lightning's TiDB-backend words for rows that collide with rows already in the target."""

    ERROR = "error"  # refuse a non-empty target table before loading anything
    REPLACE = "replace"  # REPLACE INTO: the backup's row wins
    IGNORE = "ignore"  # INSERT IGNORE: the target's row stays


@dataclass(frozen=True)
class OptionNames:
    """How the load's options are named where it was asked for (flags, or a Restore's fields), so an
    error's fix names what the user can change."""

    table_filter: str = "-f/--filter"
    on_duplicate: str = "--on-duplicate"


RESTORE_NAMES = OptionNames(table_filter="spec.tableFilter", on_duplicate="spec.tibackup.onDuplicate:")


@dataclass(frozen=True)
class LoadConfig:
    connection: Connection
    source: str  # a local folder, s3://bucket/prefix/, or a .tgz archive (local or s3://…/x.tgz)
    s3: S3Options | None = None
    table_filter: TableFilter | None = None  # None: everything in the backup
    threads: int = 4
    params: tuple[tuple[str, str], ...] = ()  # --params: session variables for every connection
    on_duplicate: OnDuplicate = OnDuplicate.ERROR
    allow_incomplete: bool = False  # load a folder without `metadata` (not a finished backup)
    csv: CSVOptions = field(default_factory=CSVOptions)  # no_header: CSV files have no line of names
    filename_template: str = ""  # the dump's --output-filename-template ('' = Dumpling's default)
    escape_backslash: bool = True  # strings in the files use backslash escapes (Dumpling's default)
    sql_mode: str = DEFAULT_SQL_MODE
    progress: bool | None = None  # None: show progress when stderr is a terminal
    checkpoint: bool = True  # record progress in the target (exactly once across a crash)
    defer_indexes: bool = True  # tables the load creates get their plain secondary keys after the data
    names: OptionNames = field(default_factory=OptionNames)  # how errors name the options

    def __repr__(self) -> str:
        return f"LoadConfig(source={self.source!r}, connection={self.connection!r}, threads={self.threads})"
