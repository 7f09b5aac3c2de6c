"""Start-up of `tibackup dump`: a sub-second dump pays for every module it imports before the first query."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Modules the dump path must not load unless asked: TOML (only --column-filter), platform (the welcome
# line's Python version comes from sys), the compressors (only -c) and the control plane's CLI library.
NOT_AT_START = ("tomllib", "platform", "zstandard", "cramjam", "click", "boto3")


def test_the_dump_command_loads_no_module_it_does_not_use() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import tibackup.cli.main, tibackup.cli.dump_cmd, tibackup.dump.dumper\n"
        "from tibackup.dump.about import welcome_line; welcome_line()\n"
        f"print(sorted(m for m in {NOT_AT_START!r} if m in sys.modules and m not in before))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_welcome_line_names_the_python_as_platform_does() -> None:
    import platform

    from tibackup.dump.about import python_version

    assert python_version() == f"{platform.python_implementation()} {platform.python_version()}"
