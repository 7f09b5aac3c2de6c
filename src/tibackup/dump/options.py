"""Dumpling's command-line flags, parsed into a DumpConfig.

The same parser serves ``tibackup dump`` and a Backup's ``spec.dumpling.options``, so a flag that works
in one works in the other, and an unknown flag fails the same way in both: with its name.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from tibackup.dump.checksum import ManifestChecksum
from tibackup.dump.config import (
    Compression,
    Connection,
    Consistency,
    CSVOptions,
    DumpConfig,
    FileType,
    TLSFiles,
)
from tibackup.dump.flagvalues import (
    parse_bool,
    parse_duration_seconds,
    parse_params,
    parse_size,
    split_list,
    unescape,
)
from tibackup.dump.tablefilter import filter_from_dumpling_flags
from tibackup.errors import StorageError, UsageError

if TYPE_CHECKING:
    from tibackup.dump.columnfilter import ColumnFilter
    from tibackup.storage.options import S3Options

PASSWORD_ENV_VARS = ("TIBACKUP_DB_PASSWORD", "MYSQL_PWD")

def _bool_flag(
    parser: argparse._ActionsContainer, *names: str, default: bool | None, help: str, dest: str | None = None
) -> None:
    """A Go-style boolean flag: ``--x`` sets it, ``--x=false`` clears it (Dumpling's -W needs that)."""
    action = parser.add_argument(
        *names, nargs="?", const=True, default=default, type=parse_bool, metavar="BOOL", help=help
    )
    if dest:
        action.dest = dest


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see 'tibackup dump --help'")


def build_parser(prog: str = "tibackup dump") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description=(
            "Export databases in Dumpling's file layout to a local folder or straight to S3. "
            "Flags, short forms and defaults are Dumpling's; the password is best given in the "
            "environment (TIBACKUP_DB_PASSWORD or MYSQL_PWD) so it never shows in a process list."
        ),
        epilog=(
            "examples:\n"
            "  TIBACKUP_DB_PASSWORD=… tibackup dump -h db -P 3306 -u root -o /backups/today\n"
            "  tibackup dump -h db -P 4000 -t 8 -r 200000 -F 256MiB -c zstd -o s3://bucket/prefix \\\n"
            "      --s3.endpoint http://ceph:7480 --s3.provider ceph\n"
            "  tibackup dump -h db -B shop -f 'shop.*' -f '!shop.audit_*' --filetype csv -o ./out"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,
    )
    add_connection_flags(p)

    out = p.add_argument_group("output")
    out.add_argument(
        "-o", "--output", default="", help="local folder or s3://bucket/prefix (default ./export-<time>)"
    )
    out.add_argument(
        "--filetype",
        default="",
        choices=["", "sql", "csv"],
        help="data file format (default sql; csv with --sql)",
    )
    out.add_argument("-c", "--compress", default="", choices=["", "gzip", "gz", "zstd", "zst", "snappy"])
    out.add_argument("-F", "--filesize", default="", help="split data files past this size, e.g. 256MiB")
    out.add_argument("-r", "--rows", type=int, default=0, help="split tables into chunks of this many rows")
    out.add_argument(
        "-s", "--statement-size", default="1000000", help="bytes per INSERT statement (default 1000000)"
    )
    out.add_argument("--output-filename-template", default="", help="e.g. '{{.DB}}.{{.Table}}.{{.Index}}'")
    _bool_flag(out, "--complete-insert", default=False, help="name the columns in every INSERT")
    _bool_flag(out, "--escape-backslash", default=True, help="escape with backslashes (default true)")
    _bool_flag(out, "--no-header", default=False, help="CSV: no header line")
    out.add_argument("--csv-separator", default=",", help="CSV field separator (default ,)")
    out.add_argument("--csv-delimiter", default='"', help='CSV quote around strings (default ")')
    out.add_argument("--csv-null-value", default="\\N", help="CSV text for NULL (default \\N)")
    out.add_argument("--csv-line-terminator", default="\r\n", help="CSV line end (default \\r\\n)")

    what = p.add_argument_group("what to dump")
    what.add_argument("-B", "--database", action="append", default=[], help="databases to dump (comma list)")
    what.add_argument("-T", "--tables-list", default="", help="tables to dump, e.g. 'db.t1,db.t2'")
    what.add_argument(
        "-f", "--filter", action="append", default=[], help="table-filter rules (comma list); repeatable"
    )
    _bool_flag(what, "--case-sensitive", default=False, help="table filter is case-sensitive")
    what.add_argument("--where", default="", help="dump only rows matching this WHERE condition")
    _bool_flag(what, "-d", "--no-data", default=False, help="no data files, schemas only")
    _bool_flag(what, "-m", "--no-schemas", default=False, help="no schema files, data only")
    _bool_flag(what, "-W", "--no-views", default=True, help="skip views (default true, as Dumpling)")
    _bool_flag(what, "--dump-empty-database", default=True, help="write schemas of empty databases")

    run = p.add_argument_group("run")
    run.add_argument("-t", "--threads", type=int, default=4, help="concurrent connections (default 4)")
    run.add_argument("--consistency", default="auto", choices=[c.value for c in Consistency])
    run.add_argument("--snapshot", default="", help="TiDB: TSO or datetime to dump at")
    run.add_argument("--tidb-mem-quota-query", default="0", help="TiDB: memory quota of each query")
    run.add_argument(
        "--read-mode",
        default="auto",
        choices=["auto", "client", "stream", "bulk"],
        help="beyond Dumpling: client (rows fetched and escaped in C), stream (each row rendered by the server) or "
        "bulk (GROUP_CONCAT batches); auto: client where it applies, else bulk, else stream",
    )
    _bool_flag(run, "--progress", default=None, help="show progress (default: when stderr is a terminal)")
    _bool_flag(
        run, "--manifest", default=True,
        help="write tibackup-manifest.json with every file's size, rows and checksum",
    )  # fmt: skip
    run.add_argument(
        "--manifest-checksum", default="xxh128", choices=[c.value for c in ManifestChecksum],
        help="the manifest's hash of each file: xxh128 (XXH3-128, as xxh128sum; default) or sha256 (as sha256sum)",
    )  # fmt: skip
    run.add_argument(
        "-L", "--logfile", default="", help="write the log to this file (default: standard output)"
    )
    run.add_argument("--loglevel", default="info", choices=["debug", "info", "warn", "error"])
    _add_dumpling_extras(what, run)

    add_s3_flags(p, "S3 (with -o s3://…)")
    return p


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    """The database connection flags (-h -P -u -p, TLS, timeouts, --params), shared with ``load``."""
    conn = p.add_argument_group("connection")
    conn.add_argument("--help", action="help", help="show this help and exit")
    conn.add_argument("-h", "--host", default="127.0.0.1", help="database host (default 127.0.0.1)")
    conn.add_argument("-P", "--port", type=int, default=4000, help="database port (default 4000)")
    conn.add_argument("-u", "--user", default="root", help="database user (default root)")
    conn.add_argument(
        "-p",
        "--password",
        default=None,
        help="password (prefer the TIBACKUP_DB_PASSWORD environment variable)",
    )
    conn.add_argument("--ca", default=None, help="CA file for TLS")
    conn.add_argument("--cert", default=None, help="client certificate file for TLS")
    conn.add_argument("--key", default=None, help="client key file for TLS")
    conn.add_argument(
        "--read-timeout",
        default="15m",
        help="give up on a server that sends nothing for this long, e.g. 30s (default 15m, as Dumpling; 0 = never)",
    )
    conn.add_argument(
        "--params",
        default="",
        help="session variables for every connection, e.g. 'sql_mode=,time_zone=+00:00'",
    )


def add_s3_flags(p: argparse.ArgumentParser, title: str) -> None:
    """The ``--s3.*`` flags, shared with ``load``."""
    s3 = p.add_argument_group(title)
    s3.add_argument(
        "--s3.endpoint", dest="s3_endpoint", default="", help="endpoint URL of an S3-compatible store"
    )
    s3.add_argument("--s3.region", dest="s3_region", default="", help="region")
    s3.add_argument(
        "--s3.provider", dest="s3_provider", default="", help="aws, ceph, minio, alibaba, other …"
    )
    s3.add_argument("--s3.storage-class", dest="s3_storage_class", default="", help="e.g. STANDARD_IA")
    s3.add_argument("--s3.sse", dest="s3_sse", default="", help="server-side encryption: AES256 or aws:kms")
    s3.add_argument("--s3.sse-kms-key-id", dest="s3_sse_kms_key_id", default="", help="KMS key for aws:kms")
    s3.add_argument("--s3.acl", dest="s3_acl", default="", help="canned ACL, e.g. private")
    s3.add_argument("--s3.ca-bundle", dest="s3_ca_bundle", default="", help="CA bundle for the endpoint")
    s3.add_argument(
        "--s3.timeout", dest="s3_timeout", default="60s",
        help="a call with no answer for this long is tried again (default 60s)",
    )  # fmt: skip
    s3.add_argument("--s3.connect-timeout", dest="s3_connect_timeout", default="5s", help="default 5s")
    s3.add_argument(
        "--s3.max-attempts", dest="s3_max_attempts", type=int, default=3,
        help="tries per S3 call (default 3): a frozen endpoint fails after about attempts × timeout",
    )  # fmt: skip
    s3.add_argument(
        "--s3.upload-journal", dest="s3_upload_journal", default="",
        help="folder noting unfinished multipart uploads until aborted "
        "(default $TIBACKUP_UPLOAD_JOURNAL or ~/.local/state/tibackup/uploads)",
    )  # fmt: skip
    _bool_flag(
        s3,
        "--s3.force-path-style",
        default=None,
        help="path-style addressing (default: auto)",
        dest="s3_force_path_style",
    )


def _add_dumpling_extras(what: argparse._ArgumentGroup, run: argparse._ArgumentGroup) -> None:
    """Dumpling's flags added for issue 11 (kept in one block)."""
    run.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    what.add_argument("--partitions", default="", help="dump only these partitions (comma list), e.g. p0,p2")
    what.add_argument(
        "--column-filter", action="append", default=[],
        help="dump only chosen columns: '{ matcher = [\"db.t\"], columns = [\"*\", \"!secret\"] }' (repeatable)",
    )  # fmt: skip
    what.add_argument("--column-filter-file", default="", help="a TOML file of [[filters]] with matcher and columns")
    what.add_argument(
        "-S",
        "--sql",
        default="",
        help="dump the result of this query (CSV) instead of tables, into result.*.csv",
    )
    _bool_flag(
        what, "--no-sequences", default=True,
        help="skip sequences (default true, as Dumpling); --no-sequences=false dumps them",
    )  # fmt: skip


QUERY_FILE_TEMPLATE = "result.{{.Index}}"  # Dumpling's DefaultAnonymousOutputFileTemplateText


def _filetype(ns: Any) -> FileType:
    """Dumpling's adjustFileFormat and validateSpecifiedSQL, with its messages."""
    if ns.sql and ns.partitions:
        raise UsageError("can't specify both --sql and --partitions at the same time")
    if ns.sql and ns.where:
        raise UsageError(
            "can't specify both --sql and --where at the same time. Please try to combine them into --sql"
        )
    if ns.sql and ns.filetype == "sql":
        raise UsageError(
            "unsupported config.FileType 'sql' when we specify --sql, please unset --filetype or set it to 'csv'"
        )
    return FileType(ns.filetype or ("csv" if ns.sql else "sql"))


def parse_dumpling_args(
    argv: Sequence[str], env: Mapping[str, str] | None = None, *, default_output: str = ""
) -> DumpConfig:
    """Parse Dumpling flags; raise UsageError naming the first bad or unknown flag."""
    env = os.environ if env is None else env
    try:
        ns = build_parser().parse_args(list(argv))
    except argparse.ArgumentError as exc:  # pragma: no cover - _Parser.error raises first
        raise UsageError(str(exc)) from None
    return config_from_namespace(ns, env, default_output=default_output)


def config_from_namespace(ns: Any, env: Mapping[str, str], *, default_output: str = "") -> DumpConfig:
    if ns.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {ns.threads}")
    if ns.rows < 0:
        raise UsageError(f"--rows must not be negative, got {ns.rows}")
    statement_size = parse_size(ns.statement_size, "--statement-size")
    if statement_size <= 0:
        raise UsageError("--statement-size must be positive")
    file_size = parse_size(ns.filesize, "--filesize") if ns.filesize else 0
    compression = {"gz": "gzip", "zst": "zstd"}.get(ns.compress, ns.compress)
    databases = split_list(ns.database)
    tables = split_list([ns.tables_list]) if ns.tables_list else []
    table_filter = None
    if databases or tables or ns.filter:
        table_filter = filter_from_dumpling_flags(
            databases, tables, split_list(ns.filter), ns.case_sensitive
        )

    output = ns.output or default_output
    if not output:
        raise UsageError("no output given: pass -o DIR or -o s3://bucket/prefix")
    s3 = None
    if output.startswith("s3://"):
        try:  # a bad -o s3://… or --s3.* flag is a usage error (exit 2), not a storage failure
            s3 = s3_options_from_flags(ns, output, env)
            s3.resolved().validate()
        except StorageError as exc:
            raise UsageError(exc.message) from None
    elif any(getattr(ns, name) for name in ("s3_endpoint", "s3_region", "s3_provider")):
        raise UsageError("--s3.* flags need an s3:// output (-o s3://bucket/prefix)")

    return DumpConfig(
        connection=connection_from_namespace(ns, env),
        output=output,
        s3=s3,
        table_filter=table_filter,
        threads=ns.threads,
        rows=ns.rows,
        file_size=file_size,
        statement_size=statement_size,
        filetype=_filetype(ns),
        csv=CSVOptions(
            separator=unescape(ns.csv_separator),
            delimiter=unescape(ns.csv_delimiter),
            null_value=ns.csv_null_value.encode("utf-8"),
            line_terminator=unescape(ns.csv_line_terminator),
            no_header=ns.no_header,
        ),
        consistency=Consistency(ns.consistency),
        snapshot=ns.snapshot,
        params=parse_params(ns.params),
        compression=Compression(compression),
        no_data=ns.no_data,
        no_schemas=ns.no_schemas,
        no_views=ns.no_views,
        no_sequences=ns.no_sequences,
        complete_insert=ns.complete_insert,
        escape_backslash=ns.escape_backslash,
        where=ns.where,
        case_sensitive=ns.case_sensitive,
        filename_template=ns.output_filename_template or (QUERY_FILE_TEMPLATE if ns.sql else ""),
        sql=ns.sql,
        partitions=tuple(split_list([ns.partitions])),
        column_filter=_column_filter(ns),
        tidb_mem_quota_query=parse_size(ns.tidb_mem_quota_query, "--tidb-mem-quota-query"),
        dump_empty_database=ns.dump_empty_database,
        read_mode=ns.read_mode,
        progress=ns.progress,
        manifest=ns.manifest,
        manifest_checksum=ManifestChecksum(ns.manifest_checksum),
    )


def _column_filter(ns: Any) -> ColumnFilter | None:
    """--column-filter(-file)'s filter; its parser (and TOML) is loaded only when one is given (start-up)."""
    if not ns.column_filter and not ns.column_filter_file:
        return None
    from tibackup.dump.columnfilter import parse_column_filters

    return parse_column_filters(
        ns.column_filter, ns.column_filter_file, case_sensitive=ns.case_sensitive, sql=ns.sql
    )


def connection_from_namespace(ns: Any, env: Mapping[str, str]) -> Connection:
    """The connection of add_connection_flags' flags; the password from -p or the environment."""
    password = ns.password
    if password is None:
        password = next((env[name] for name in PASSWORD_ENV_VARS if env.get(name)), "")
    return Connection(
        host=ns.host,
        port=ns.port,
        user=ns.user,
        password=password,
        tls=TLSFiles(ca=ns.ca, cert=ns.cert, key=ns.key),
        read_timeout=parse_duration_seconds(ns.read_timeout, "--read-timeout"),
    )


def s3_options_from_flags(ns: Any, output: str, env: Mapping[str, str]) -> S3Options:
    from tibackup.storage.options import S3Options, parse_s3_url  # only S3 output (start-up)

    bucket, prefix = parse_s3_url(output)
    return S3Options(
        bucket=bucket,
        prefix=prefix,
        endpoint=ns.s3_endpoint or None,
        region=ns.s3_region or None,
        provider=ns.s3_provider or "aws",
        storage_class=ns.s3_storage_class or None,
        acl=ns.s3_acl or None,
        sse=ns.s3_sse or None,
        sse_kms_key_id=ns.s3_sse_kms_key_id or None,
        force_path_style=ns.s3_force_path_style,
        ca_bundle=ns.s3_ca_bundle or None,
        connect_timeout=parse_duration_seconds(ns.s3_connect_timeout, "--s3.connect-timeout") or 5.0,
        read_timeout=parse_duration_seconds(ns.s3_timeout, "--s3.timeout") or 60.0,
        max_attempts=ns.s3_max_attempts,
    )
