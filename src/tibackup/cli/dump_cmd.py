"""``tibackup dump``: the dumper alone, with Dumpling's flags."""

from __future__ import annotations

import gc
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from tibackup.dump.about import long_version, welcome_line
from tibackup.dump.dumper import run_dump
from tibackup.dump.options import build_parser, config_from_namespace
from tibackup.dump.progress import Progress, ProgressPrinter
from tibackup.errors import TibackupError, UsageError
from tibackup.record import evolve
from tibackup.storage import open_storage
from tibackup.units import human_duration, human_size

log = logging.getLogger("tibackup.dump")


def run(args: list[str]) -> None:
    """``tibackup dump ARGS``: Dumpling's flags (argparse; ``--help`` prints them and exits)."""
    ns = build_parser().parse_args(args)
    if ns.version:
        sys.stdout.write(long_version())
        return
    _start_log(ns.loglevel, ns.logfile)
    log.info("%s", welcome_line())
    try:
        _dump(ns)
    except TibackupError as exc:  # the log gets the line the console gets (Dumpling: "dump failed: …")
        log.error("dump failed: %s", exc.message)
        raise
    except KeyboardInterrupt:
        log.error("dump failed: interrupted; it is incomplete (no metadata file was written)")
        raise
    except Exception as exc:
        log.error("dump failed: internal error: %s: %s", type(exc).__name__, exc)
        raise


def _start_log(level: str, logfile: str) -> None:
    """As Dumpling: the log goes to standard output, or only to ``-L FILE`` (its folder made if need be)."""
    from tibackup.cli.main import setup_logging

    if logfile:
        try:
            Path(logfile).parent.mkdir(parents=True, exist_ok=True)
            Path(logfile).open("a").close()
        except OSError as exc:
            raise UsageError(f"-L {logfile}: cannot write the log file: {exc.strerror or exc}") from None
    setup_logging(level, logfile, console="" if logfile else "stdout")


def _dump(ns: object) -> None:
    default_output = "./export-" + datetime.now().strftime("%Y-%m-%dT%H%M%S")
    config = config_from_namespace(ns, os.environ, default_output=default_output)
    journal = None
    if config.s3 is not None:
        import dataclasses  # S3Options is a dataclass (records are not: tibackup.record)

        from tibackup.storage.journal import open_dump_journal  # only S3 uploads keep a journal (start-up)

        journal = open_dump_journal(getattr(ns, "s3_upload_journal", ""))
        config = evolve(config, s3=dataclasses.replace(config.s3, journal=journal))
    storage = open_storage(config.output, config.s3)  # an S3 client loads botocore's models here
    if journal is not None:
        from tibackup.storage.journal import abort_leftovers

        abort_leftovers(storage, journal)
    # One run per process: nothing loaded so far turns into garbage, so the collector may skip it for
    # good (collections walking botocore's objects cost ~5% of an S3 dump's CPU, measured with perf).
    gc.freeze()
    gc.enable()  # main() turned collection off for the start-up
    progress = Progress()
    show = config.progress if config.progress is not None else sys.stderr.isatty()
    from tibackup.errors import TibackupError

    try:
        if show:
            with ProgressPrinter(progress):
                result = run_dump(config, storage, progress)
        else:
            result = run_dump(config, storage, progress)
    except TibackupError as exc:
        if journal is not None:
            from tibackup.storage.journal import uploads_left_note

            exc.args = (exc.message + uploads_left_note(journal),)
        raise
    took = (result.finished - result.started).total_seconds()
    log.info(
        "dump complete: %d files, %s rows, %s in %s (%s/s) → %s",
        len(result.files), f"{result.rows:,}", human_size(result.size), human_duration(took),
        human_size(result.size / max(took, 1e-3)), result.output,
    )  # fmt: skip
