"""The CLI's last line of defence: whatever fails, the user gets one line and an exit code."""

from __future__ import annotations

import pytest

from tibackup.cli import main as cli_main
from tibackup.errors import StorageError


def _fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr("tibackup.cli.dump_cmd.run_dump", boom)


def test_user_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _fail_with(monkeypatch, StorageError("bucket 'b' does not exist: create it"))
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["dump", "-o", "/tmp/unused-out"])
    assert exit_info.value.code == StorageError.exit_code
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: bucket 'b' does not exist: create it"


def test_unexpected_error_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(monkeypatch, ValueError("something nobody expected\nsecond line"))
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["dump", "-o", "/tmp/unused-out"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith("error: internal error: ValueError: something nobody expected")
        and "--loglevel debug" in last
    )


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["backup-everything"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: No such command")
