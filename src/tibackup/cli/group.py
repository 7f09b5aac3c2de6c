"""The click command group of every command but ``dump`` (see main.py), loaded only when needed."""

from __future__ import annotations

import importlib
import sys

import click

from tibackup import __version__
from tibackup.cli.main import COMMANDS

# What `tibackup --help` lists, without importing every command (kopf, the Kubernetes client: ~0.15 s).
# Each line is the first sentence of the command's own help; a test keeps them equal. None: hidden.
SUMMARIES: dict[str, str | None] = {
    "apply": "Create or update Backups, BackupSchedules and Restores from YAML (several documents per file allowed).",
    "controller": "Run pending Backups and Restores and every BackupSchedule (with retention) until SIGTERM "
    "or Ctrl-C.",
    "create": "Create objects from the command line (Secrets).",
    "delete": "Delete Backups (their data per spec.cleanPolicy), BackupSchedules (with their Backups), Restores or Secrets.",
    "describe": "Show a Backup, BackupSchedule or Restore in detail: spec, status, conditions and events.",
    "dump": "Export databases in Dumpling's layout to a folder or S3 (see 'tibackup dump --help').",
    "get": "List Backups (bk), BackupSchedules (bks), Restores (rt) or Secrets, as kubectl get does.",
    "load": "Load a backup (folder, S3 or .tgz) into TiDB/MySQL, resumable (see 'tibackup load --help').",
    "job": "Commands the operator's Jobs run inside the cluster (not meant to be typed by hand).",
    "operator": "Run the Kubernetes operator: Backups become Jobs, BackupSchedules create and prune Backups.",
    "rerun": "Run Failed or Invalid Backups or Restores again (a Restore resumes from its checkpoint).",
    "run-backup": None,
    "run-restore": None,
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, summary) for name, summary in sorted(SUMMARIES.items()) if summary]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
    tibackup load -d BACKUP …        load a backup back (folder, S3, .tgz), resumable
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


@click.command(
    "load",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def load(args: tuple[str, ...]) -> None:
    """Load a backup (folder, S3 or .tgz) into TiDB/MySQL, resumable (see 'tibackup load --help')."""
    from tibackup.cli.load_cmd import run

    run(list(args))  # only reached as `tibackup <group options> load …`; main() runs `load` directly


def run_click(args: list[str]) -> None:
    try:
        cli.main(args=args, prog_name="tibackup", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from None  # a signal: main() says "interrupted", as for any command
        click.echo("error: aborted", err=True)
        sys.exit(130)
