"""`tibackup --help` lists the commands from static summaries; they must say what the commands say."""

from __future__ import annotations

import click

from tibackup.cli.group import SUMMARIES, cli
from tibackup.cli.main import COMMANDS


def test_summaries_are_the_commands_own_first_lines() -> None:
    assert set(SUMMARIES) == set(COMMANDS)
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        first_line = (command.help or "").strip().splitlines()[0]
        if command.hidden:
            assert SUMMARIES[name] is None, f"{name} is hidden"
        else:
            assert SUMMARIES[name] == first_line, f"the summary of {name} differs from its help"


def test_top_level_help_lists_every_visible_command(capsys) -> None:  # type: ignore[no-untyped-def]
    from tibackup.cli.main import main

    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for name, summary in SUMMARIES.items():
        assert (f"  {name} " in out) is (summary is not None), name
