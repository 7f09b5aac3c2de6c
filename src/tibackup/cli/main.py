"""The ``tibackup`` command: one entry point, one error handler.

Every command's failure a user can cause is a TibackupError; it is printed as one line
(``error: …``) with the command's exit code, never as a traceback. SIGTERM is handled like Ctrl-C so a
killed run still cleans up (aborts uploads, unlocks tables, restores the GC life time); a burst of
signals ends like one.

``tibackup dump`` (and ``load``) is dispatched before click is imported (its flags are Dumpling's, parsed by argparse):
a short dump should not pay ~20 ms of start-up for a command-line library it does not use.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

from tibackup.errors import Interrupted, TibackupError

_signals_received = 0


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """The first SIGTERM or SIGINT stops the run as Ctrl-C does (KeyboardInterrupt, so every cleanup
    runs: uploads aborted, tables unlocked, status recorded); the ones that follow — systemd, kubelet
    and impatient users send several — are ignored, so they cannot interrupt that cleanup halfway.
    The cleanup is bounded by the S3 and database timeouts; SIGKILL remains for a hung one."""
    global _signals_received
    _signals_received += 1
    if _signals_received == 1:
        raise KeyboardInterrupt


def install_signal_handlers() -> None:
    global _signals_received
    _signals_received = 0
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def leave(code: int) -> NoReturn:
    """Exit with ``code``; after a stop signal without the interpreter's own shutdown, whose first step
    is to restore the default signal handlers: a late signal of the burst would then still kill the
    process (exit -15). The cleanup already ran; only the output is flushed."""
    if _signals_received:
        leave_after_signal(code)
    sys.exit(code)


def leave_after_signal(code: int) -> NoReturn:
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """Flush the logs and the output, then end the process without the interpreter's teardown (module
    by module, object by object: ~3 ms of a sub-second dump, docs/dump-performance.md)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def setup_logging(level: str = "info", logfile: str = "", *, console: str = "stderr") -> None:
    """Log to ``console`` ("stderr", "stdout" or "" for none) and to ``logfile`` when given."""
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(logging.StreamHandler(sys.stdout if console == "stdout" else sys.stderr))
    if logfile:
        handlers.append(logging.FileHandler(logfile))
    logging.basicConfig(
        level=levels.get(level, logging.INFO),
        format="%(asctime)s %(levelname)-5s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        handlers=handlers,
        force=True,
    )
    # Libraries log their retries at INFO; keep the log about what tibackup does.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "kopf", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, levels.get(level, logging.INFO)))


# Each command lives in its runtime's module and is imported only when it runs: `tibackup dump` must not
# pay for kopf, the Kubernetes client or the resource models (~0.2 s of start-up).
COMMANDS: dict[str, tuple[str, str]] = {
    "dump": ("tibackup.cli.group", "dump"),
    "load": ("tibackup.cli.group", "load"),
    "apply": ("tibackup.cli.resources_cmd", "apply"),
    "get": ("tibackup.cli.get_cmd", "get"),
    "describe": ("tibackup.cli.get_cmd", "describe"),
    "delete": ("tibackup.cli.resources_cmd", "delete"),
    "rerun": ("tibackup.cli.rerun_cmd", "rerun"),
    "create": ("tibackup.cli.secret_cmd", "create"),
    "controller": ("tibackup.cli.controller_cmd", "controller"),
    "run-backup": ("tibackup.cli.controller_cmd", "run_backup_cmd"),
    "run-restore": ("tibackup.cli.controller_cmd", "run_restore_cmd"),
    "operator": ("tibackup.cli.operator_cmd", "operator_command"),
    "job": ("tibackup.cli.operator_cmd", "job_group"),
}


def _error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> None:
    install_signal_handlers()
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] in (["dump"], ["load"]):
            # Start-up allocates much and frees little: collecting during it is wasted (~5 ms). The
            # dump (and load) freezes what start-up made and collects again from there.
            gc.disable()
            try:
                if args[0] == "load":
                    from tibackup.cli.load_cmd import run
                else:
                    from tibackup.cli.dump_cmd import run
                from tibackup.storage.wording import reword_for_command_line

                try:
                    run(args[1:])
                except TibackupError as exc:  # its storage advice names flags and variables, not a Secret
                    raise reword_for_command_line(exc) from None
                if argv is None and args[0] == "dump":  # the process's own dump, done: skip the teardown
                    exit_now(0)
            finally:
                gc.enable()
        else:
            from tibackup.cli.group import run_click

            run_click(args)
    except TibackupError as exc:
        _error(exc.message)
        leave(exc.exit_code)
    except KeyboardInterrupt:
        _error(Interrupted("interrupted: the run stopped before it finished").message)
        leave(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug in tibackup, or a failure nobody translated: still one line
        logging.getLogger("tibackup").debug("unexpected error", exc_info=True)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        _error(f"internal error: {type(exc).__name__}: {detail} ({_debug_hint(args)}please report it)")
        sys.exit(1)


# The flag that logs at debug level (with the traceback), where the command has one.
_DEBUG_FLAGS = {"dump": "--loglevel", "controller": "--log-level", "operator": "--log-level"}


def _debug_hint(args: list[str]) -> str:
    flag = _DEBUG_FLAGS.get(args[0] if args else "")
    return f"run again with {flag} debug for the traceback, and " if flag else ""


if __name__ == "__main__":  # pragma: no cover
    main()
