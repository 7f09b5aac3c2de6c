"""What one dump is asked to do: Dumpling's options, as plain values.

``tibackup dump`` fills this from Dumpling's command-line flags (``options.parse_dumpling_args``); the
backup manager fills it from a Backup's ``spec.dumpling.options`` through the same parser, so both
accept exactly the same flags.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tibackup.dump.checksum import ManifestChecksum
from tibackup.record import field, record

if TYPE_CHECKING:  # annotations only: a dump without --column-filter never loads its parser (start-up)
    from tibackup.dump.columnfilter import ColumnFilter
    from tibackup.dump.tablefilter import TableFilter
    from tibackup.storage.options import S3Options


class FileType(StrEnum):
    SQL = "sql"
    CSV = "csv"


class Consistency(StrEnum):
    AUTO = "auto"
    NONE = "none"
    FLUSH = "flush"
    LOCK = "lock"
    SNAPSHOT = "snapshot"


class Compression(StrEnum):
    NONE = ""
    GZIP = "gzip"
    ZSTD = "zstd"
    SNAPPY = "snappy"

    @property
    def suffix(self) -> str:
        return {"": "", "gzip": ".gz", "zstd": ".zst", "snappy": ".snappy"}[self.value]


@record
class TLSFiles:
    """The client certificate files of --ca/--cert/--key."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def any(self) -> bool:
        return bool(self.ca or self.cert or self.key)


@record(repr=False)  # its own __repr__ below
class Connection:
    """Where and as whom to connect (the password is never shown)."""

    host: str = "127.0.0.1"
    port: int = 4000
    user: str = "root"
    password: str = field(default="", repr=False)
    tls: TLSFiles = field(default_factory=TLSFiles)
    read_timeout: float | None = None

    def __repr__(self) -> str:  # never show the password
        return f"Connection(host={self.host!r}, port={self.port}, user={self.user!r})"


@record(eq=True)  # compared with its default
class CSVOptions:
    """--filetype csv's separators, quoting and NULL text."""

    separator: bytes = b","
    delimiter: bytes = b'"'
    null_value: bytes = b"\\N"
    line_terminator: bytes = b"\r\n"
    no_header: bool = False


@record(repr=False)  # its own __repr__ below
class DumpConfig:
    """One dump, as Dumpling's flags ask for it."""

    connection: Connection
    output: str  # a local folder or s3://bucket/prefix
    s3: S3Options | None = None
    table_filter: TableFilter | None = None  # None: Dumpling's default filter
    threads: int = 4
    rows: int = 0  # -r: split tables into chunks of about this many rows; 0 = one chunk
    file_size: int = 0  # -F: start a new file past this many bytes; 0 = no limit
    statement_size: int = 1_000_000  # -s
    filetype: FileType = FileType.SQL
    csv: CSVOptions = field(default_factory=CSVOptions)
    consistency: Consistency = Consistency.AUTO
    snapshot: str = ""  # --snapshot: a TSO or datetime for TiDB
    params: tuple[tuple[str, str], ...] = ()  # --params: session variables for every connection
    compression: Compression = Compression.NONE
    no_data: bool = False  # -d
    no_schemas: bool = False  # -m
    no_views: bool = True  # -W (Dumpling dumps no views unless told --no-views=false)
    no_sequences: bool = True  # --no-sequences (likewise for sequences)
    sql: str = ""  # --sql: dump this query's result (result.*.csv) instead of tables and schemas
    partitions: tuple[str, ...] = ()  # --partitions: dump only these partitions of each table
    column_filter: ColumnFilter | None = None  # --column-filter(-file): dump only the columns it keeps
    complete_insert: bool = False
    escape_backslash: bool = True
    where: str = ""
    case_sensitive: bool = False
    filename_template: str = ""
    tidb_mem_quota_query: int = 0
    dump_empty_database: bool = True
    read_mode: str = "auto"  # client (the C reader), stream or bulk (rendered by the server); see dumper
    progress: bool | None = None  # None: show progress when stderr is a terminal
    manifest: bool = True
    manifest_checksum: ManifestChecksum = ManifestChecksum.XXH128  # --manifest-checksum: each file's hash
    check_storage: bool = True  # probe the output with a write first (off: rclone's --s3-no-check-bucket)

    def __repr__(self) -> str:
        return f"DumpConfig(output={self.output!r}, connection={self.connection!r}, threads={self.threads})"
