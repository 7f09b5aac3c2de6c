"""`tibackup --help` lists the commands from static summaries; they must say what the commands say."""

from __future__ import annotations

import click
import pytest

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


WRITE_ONLY_S3_FLAGS = ("--s3.storage-class", "--s3.sse", "--s3.sse-kms-key-id", "--s3.acl", "--s3.upload-journal")


def test_load_help_has_no_flags_that_only_shape_writes() -> None:
    from tibackup.cli.load_cmd import build_parser as build_load_parser
    from tibackup.dump.options import build_parser as build_dump_parser

    load_help, dump_help = build_load_parser().format_help(), build_dump_parser().format_help()
    for flag in WRITE_ONLY_S3_FLAGS:
        assert f"{flag} " not in load_help, flag
        assert f"{flag} " in dump_help, flag
    assert "--s3.endpoint" in load_help and "--s3.ca-bundle" in load_help


@pytest.mark.parametrize(
    "flag", [["--s3.storage-class", "GLACIER"], ["--s3.sse", "AES256"], ["--s3.sse-kms-key-id", "k"],
             ["--s3.acl", "private"], ["--s3.upload-journal", "/tmp/j"]],
)  # fmt: skip
def test_load_refuses_a_write_only_s3_flag_naming_why(flag: list[str]) -> None:
    from tibackup.cli.load_cmd import config_from_args
    from tibackup.errors import UsageError

    with pytest.raises(UsageError) as caught:
        config_from_args(["-d", "s3://bucket/backup-1/", *flag], {})
    message = caught.value.message
    assert message.startswith(f"{flag[0]} only applies when writing a backup (tibackup dump)"), message
    assert "\n" not in message
