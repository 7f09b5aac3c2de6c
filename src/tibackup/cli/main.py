"""The ``tibackup`` command: one entry point, one error handler.

Every command's failure a user can cause is a TibackupError; it is printed as one line
(``error: …``) with the command's exit code, never as a traceback. SIGTERM is handled like Ctrl-C so a
killed run still cleans up (aborts uploads, unlocks tables, restores the GC life time).
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from types import FrameType

import click

from tibackup import __version__
from tibackup.errors import Interrupted, TibackupError


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def setup_logging(level: str = "info", logfile: str = "") -> None:
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
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
    "dump": ("tibackup.cli.dump_cmd", "dump"),
    "apply": ("tibackup.cli.resources_cmd", "apply"),
    "get": ("tibackup.cli.resources_cmd", "get"),
    "describe": ("tibackup.cli.resources_cmd", "describe"),
    "delete": ("tibackup.cli.resources_cmd", "delete"),
    "create": ("tibackup.cli.secret_cmd", "create"),
    "controller": ("tibackup.cli.controller_cmd", "controller"),
    "run-backup": ("tibackup.cli.controller_cmd", "run_backup_cmd"),
    "operator": ("tibackup.cli.operator_cmd", "operator_command"),
    "job": ("tibackup.cli.operator_cmd", "job_group"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="tibackup")
def cli() -> None:
    """Logical backups of TiDB and MySQL-compatible databases into S3-compatible storage.

    \b
    tibackup dump …                  run the Dumpling-compatible dumper alone
    tibackup apply -f backup.yaml    run TiDB Operator's Backup / BackupSchedule resources here
    tibackup get bk -o wide          see them, as with kubectl
    """


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        cli.main(args=argv, prog_name="tibackup", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except TibackupError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(
            f"error: {Interrupted('interrupted: the run stopped before it finished').message}", err=True
        )
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug in tibackup, or a failure nobody translated: still one line
        logging.getLogger("tibackup").debug("unexpected error", exc_info=True)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"error: internal error: {type(exc).__name__}: {detail} "
            "(run again with --loglevel debug for the traceback, and please report it)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
