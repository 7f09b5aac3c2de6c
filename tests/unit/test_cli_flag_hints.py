"""Every flag a message names exists: hints that name a missing flag send users nowhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from tibackup.cli.group import cli
from tibackup.cli.load_cmd import build_parser as build_load_parser
from tibackup.cli.main import main
from tibackup.dump.options import build_parser
from tibackup.resources import SUPPORTED_S3_OPTIONS

SRC = Path(__file__).resolve().parents[2] / "src" / "tibackup"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9.-]*[a-z0-9]")
# Not flags of a tibackup command, each for a reason.
NOT_OURS = {
    "--csv": "the prefix of the --csv-* flags (as in 'check the --csv-* flags')",
    "--s3": "the prefix of dump's --s3.* flags, in the parser's own help",
    "--flag": "a placeholder in the s3.options error message",
    "--allow-missing-template-keys": "kubectl's flag, named where cli/jsonpath.py says which default it follows",
    "--overwrite": "kubectl annotate's flag, named where `tibackup rerun` says what it does",
}


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    found: dict[tuple[str, ...], click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or name in ("dump", "load"):  # argparse commands, below
            continue
        found[(*prefix, name)] = command
        if isinstance(command, click.Group):
            found.update(commands(command, (*prefix, name)))
    return found


def click_flags(command: click.Command) -> set[str]:
    return {
        opt
        for param in command.params
        for opt in [*param.opts, *param.secondary_opts]
        if opt.startswith("--")
    }


def dump_flags() -> set[str]:
    """The flags of the argparse commands: dump (Dumpling's) and load."""
    return {
        opt
        for parser in (build_parser(), build_load_parser())
        for action in parser._actions
        for opt in action.option_strings
        if opt.startswith("--")
    }


def test_every_flag_named_in_the_source_exists() -> None:
    known = dump_flags() | set(SUPPORTED_S3_OPTIONS) | {"--help"} | set(NOT_OURS)
    for command in commands().values():
        known |= click_flags(command)
    unknown: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                unknown += [
                    f"{path.relative_to(SRC)}: {flag}"
                    for flag in FLAG.findall(node.value)
                    if flag not in known
                ]
    assert unknown == []


@pytest.mark.parametrize("name", ["dump", "controller", "operator", "apply", "get"])
def test_internal_error_hint_names_a_flag_of_that_command(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catch-all 'internal error' line: the debug flag it names is the command's own (or none)."""

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("tibackup.cli.dump_cmd.run", boom)
    monkeypatch.setattr(click.Command, "invoke", boom)
    with pytest.raises(SystemExit):
        main([name])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: internal error: RuntimeError: boom")
    named = set(FLAG.findall(line))
    own = dump_flags() if name == "dump" else click_flags(commands()[(name,)])
    assert named <= own, (named, line)
    if name in ("dump", "controller", "operator"):
        assert named  # these have a log level flag: the hint names it
