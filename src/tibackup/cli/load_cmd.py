"""``tibackup load``: the loader alone (as myloader is to mydumper), with ``dump``'s connection and S3 flags."""

from __future__ import annotations

import argparse
import gc
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from tibackup.dump.config import CSVOptions
from tibackup.dump.flagvalues import parse_params, split_list, unescape
from tibackup.dump.options import (
    _bool_flag,
    add_connection_flags,
    add_s3_flags,
    connection_from_namespace,
    s3_options_from_flags,
)
from tibackup.dump.progress import progress_shown
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import UsageError
from tibackup.load.config import DEFAULT_SQL_MODE, LoadConfig, OnDuplicate
from tibackup.units import human_duration, human_size

log = logging.getLogger("tibackup.load")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see 'tibackup load --help'")


# dump's --s3.* flags that only shape the objects it writes (or note its uploads): hidden from load's help.
WRITE_ONLY_S3_FLAGS: dict[str, str] = {
    "s3_storage_class": "--s3.storage-class",
    "s3_sse": "--s3.sse",
    "s3_sse_kms_key_id": "--s3.sse-kms-key-id",
    "s3_acl": "--s3.acl",
    "s3_upload_journal": "--s3.upload-journal",
}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tibackup load",
        description=(
            "Load a backup in Dumpling's layout (a folder, s3://bucket/prefix/, or a TiDB Operator .tgz) "
            "into TiDB or MySQL over parallel sessions, checked against its manifest and resumable: run the "
            "same command again after a crash and it goes on where it stopped, loading every row exactly "
            "once. The password is best given in the environment (TIBACKUP_DB_PASSWORD or MYSQL_PWD)."
        ),
        epilog=(
            "examples:\n"
            "  TIBACKUP_DB_PASSWORD=… tibackup load -d /backups/today -h db -P 3306 -u root -t 4\n"
            "  tibackup load -d s3://bucket/backup-2026-12-01T08:00:00Z/ -h db -P 4000 \\\n"
            "      --s3.endpoint http://ceph:7480 --s3.provider ceph -f 'shop.*'\n"
            "  tibackup load -d s3://bucket/backup-20261201.tgz -h db --on-duplicate replace"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,
    )
    add_connection_flags(p)
    src = p.add_argument_group("what to load")
    src.add_argument("-d", "--directory", default="", help="the backup: folder, s3://bucket/prefix/ or .tgz")
    src.add_argument(
        "-f", "--filter", action="append", default=[], help="table-filter rules (comma list); repeatable"
    )
    _bool_flag(src, "--case-sensitive", default=False, help="table filter is case-sensitive")
    src.add_argument(
        "--on-duplicate",
        default="error",
        choices=[o.value for o in OnDuplicate],
        help="target tables holding rows: error (refuse, default), replace (REPLACE INTO), ignore (INSERT IGNORE)",
    )
    _bool_flag(
        src, "--allow-incomplete", default=False, help="load a folder without 'metadata' (an unfinished dump)"
    )
    src.add_argument(
        "--output-filename-template", default="", help="the template the dump named its data files with"
    )
    csv = p.add_argument_group("CSV files (the settings the dump was made with)")
    csv.add_argument("--csv-separator", default=",", help="field separator (default ,)")
    csv.add_argument("--csv-delimiter", default='"', help='quote around strings (default ")')
    csv.add_argument("--csv-null-value", default="\\N", help="text for NULL (default \\N)")
    csv.add_argument("--csv-line-terminator", default="\r\n", help="line end (default \\r\\n)")
    _bool_flag(csv, "--csv-header", default=True, help="the first line names the columns (default true)")
    _bool_flag(
        csv,
        "--escape-backslash",
        default=True,
        help="values use backslash escapes (default true, as the dump)",
    )
    run = p.add_argument_group("run")
    run.add_argument("-t", "--threads", type=int, default=4, help="concurrent sessions (default 4)")
    run.add_argument(
        "--sql-mode", default=DEFAULT_SQL_MODE, help=f"sql_mode while loading ({DEFAULT_SQL_MODE})"
    )
    _bool_flag(run, "--progress", default=None, help="show progress (default: when stderr is a terminal)")
    _bool_flag(
        run,
        "--checkpoint",
        default=True,
        help="record progress in the target to resume after a crash (default)",
    )
    _bool_flag(
        run,
        "--defer-indexes",
        default=True,
        help="create new tables without their plain secondary keys and add them after the data, one "
        "sorted build per table (default true)",
    )
    run.add_argument(
        "--no-defer-indexes", dest="defer_indexes", action="store_false", help="= --defer-indexes=false"
    )
    run.add_argument("-L", "--logfile", default="", help="also write the log to this file")
    run.add_argument("--loglevel", default="info", choices=["debug", "info", "warn", "error"])
    add_s3_flags(p, "S3 (with -d s3://…)")
    for action in p._actions:  # dump's flags for what it writes: not load's (refused by name below)
        if action.dest in WRITE_ONLY_S3_FLAGS:
            action.help = argparse.SUPPRESS
    return p


def config_from_args(argv: Sequence[str], env: Mapping[str, str]) -> tuple[LoadConfig, Any]:
    ns = build_parser().parse_args(list(argv))
    source = ns.directory
    if not source:
        raise UsageError("no backup given: pass -d DIR, -d s3://bucket/prefix/ or -d s3://…/backup.tgz")
    if ns.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {ns.threads}")
    given = [flag for dest, flag in WRITE_ONLY_S3_FLAGS.items() if getattr(ns, dest)]
    if given:
        raise UsageError(
            f"{given[0]} only applies when writing a backup (tibackup dump): load reads the objects as "
            "they are stored, so remove it"
        )
    s3 = None
    if source.startswith("s3://"):
        s3 = s3_options_from_flags(ns, source, env)
    elif any(getattr(ns, name) for name in ("s3_endpoint", "s3_region", "s3_provider")):
        raise UsageError("--s3.* flags need an s3:// source (-d s3://bucket/prefix/)")
    rules = split_list(ns.filter)
    config = LoadConfig(
        connection=connection_from_namespace(ns, env),
        source=source,
        s3=s3,
        table_filter=TableFilter.parse(rules, case_sensitive=ns.case_sensitive) if rules else None,
        threads=ns.threads,
        params=parse_params(ns.params),
        on_duplicate=OnDuplicate(ns.on_duplicate),
        allow_incomplete=ns.allow_incomplete,
        csv=CSVOptions(
            separator=unescape(ns.csv_separator),
            delimiter=unescape(ns.csv_delimiter),
            null_value=ns.csv_null_value.encode("utf-8"),
            line_terminator=unescape(ns.csv_line_terminator),
            no_header=not ns.csv_header,
        ),
        escape_backslash=ns.escape_backslash,
        filename_template=ns.output_filename_template,
        sql_mode=ns.sql_mode,
        progress=ns.progress,
        checkpoint=ns.checkpoint,
        defer_indexes=ns.defer_indexes,
    )
    return config, ns


def run(args: list[str]) -> None:
    """``tibackup load ARGS`` (argparse; ``--help`` prints the flags and exits)."""
    from tibackup.cli.main import setup_logging
    from tibackup.load.loader import run_load
    from tibackup.load.progress import LoadProgress
    from tibackup.load.source import open_source

    config, ns = config_from_args(args, os.environ)
    setup_logging(ns.loglevel, ns.logfile)
    source = open_source(config.source, config.s3)
    gc.freeze()  # as dump: start-up objects live for the whole run
    gc.enable()
    progress = LoadProgress()
    with progress_shown(progress, config.progress):
        result = run_load(config, source, progress)
    if result.already_loaded:
        log.info(
            "already loaded: an earlier run of this load finished (%s rows) and its tables are there; nothing "
            "to do (to load it again, drop its tables first) ← %s", f"{result.rows:,}", result.source,
        )  # fmt: skip
        return
    took = (result.finished - result.started).total_seconds()
    log.info(
        "load complete: %d data files, %s rows, %s in %s (%s/s)%s ← %s",
        result.files, f"{result.rows:,}", human_size(result.bytes), human_duration(took),
        human_size(result.bytes / max(took, 1e-3)), " (resumed)" if result.resumed else "", result.source,
    )  # fmt: skip
