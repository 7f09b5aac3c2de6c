"""bench/ab.py, the one A/B script: any commands given whole, or (``--ab-src``) this checkout's start-up
against another ``src`` folder; each command's peak RSS is its own, not this Python's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _ab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab.py"), *args], capture_output=True, text=True, timeout=120
    )


def _rows(out: str) -> dict[str, list[str]]:
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    return {row[0]: row[1:] for row in cells[1:]}


def test_commands_take_turns_and_each_peak_rss_is_the_commands_own() -> None:
    """``true`` needs about 1 MB; a child forked from the script's Python (15 MB) reported that instead."""
    result = _ab("--rounds", "2", "true", f"{sys.executable} -c pass")
    assert result.returncode == 0, result
    rows = _rows(result.stdout)
    assert list(rows) == ["true", f"{sys.executable} -c pass"], result.stdout
    wall, cpu, rss, faults = rows["true"]
    assert wall.endswith(")") and cpu.endswith(" ms") and int(faults) > 0
    assert float(rss.removesuffix(" MB")) < 5, rss
    assert float(rows[f"{sys.executable} -c pass"][2].removesuffix(" MB")) > float(rss.removesuffix(" MB"))


def test_ab_src_compares_the_start_up_of_two_sources_with_mydumpers() -> None:
    result = _ab("--ab-src", str(ROOT / "src"), "--rounds", "1", "--no-dump")
    assert result.returncode == 0, result
    assert list(_rows(result.stdout)) == [
        "python -c pass",
        "mydumper --version",
        "tibackup dump to its first connection attempt (before)",
        "tibackup dump to its first connection attempt (this checkout)",
    ], result.stdout


def test_commands_and_ab_src_are_one_or_the_other() -> None:
    for args in ((), ("--ab-src", str(ROOT / "src"), "true")):
        result = _ab(*args)
        assert result.returncode == 2 and "give either the commands to compare or --ab-src SRC" in result.stderr
