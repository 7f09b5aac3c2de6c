"""The click command group of every command but ``dump`` (see main.py), loaded only when needed."""

from __future__ import annotations

import importlib
import sys

import click

from tibackup import __version__
from tibackup.cli.main import COMMANDS


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


@click.command(
    "dump",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dump(args: tuple[str, ...]) -> None:
    """Export databases in Dumpling's layout to a folder or S3 (see 'tibackup dump --help')."""
    from tibackup.cli.dump_cmd import run

    run(list(args))  # only reached as `tibackup <group options> dump …`; main() runs `dump` directly


def run_click(args: list[str]) -> None:
    try:
        cli.main(args=args, prog_name="tibackup", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
