"""One machine needs neither kopf nor the Kubernetes client: they are the extra tibackup[operator]."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run with kopf and kubernetes made unimportable, as on an install without the extra.
BLOCKED = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("kopf", "kubernetes", "kmock"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
"""

IMPORTS = """
import tibackup.cli.main, tibackup.cli.group, tibackup.cli.resources_cmd, tibackup.cli.controller_cmd
import tibackup.cli.secret_cmd, tibackup.cli.dump_cmd, tibackup.cli.operator_cmd
import tibackup.embedded.runtime, tibackup.embedded.controller, tibackup.embedded.lifecycle
import tibackup.embedded.metrics, tibackup.embedded.store, tibackup.embedded.schedules
import tibackup.dump.dumper, tibackup.manager.run, tibackup.manager.clean, tibackup.manager.recover
import tibackup.resources.crd, tibackup.control.alerting
assert "kopf" not in sys.modules and "kubernetes" not in sys.modules
print("ok")
"""


def blocked(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED + code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_operator_dependencies_are_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = [d.split(">")[0].split("[")[0].strip() for d in project["dependencies"]]
    assert "kopf" not in core and "kubernetes" not in core
    extra = [d.split(">")[0] for d in project["optional-dependencies"]["operator"]]
    assert set(extra) == {"kopf", "kubernetes"}
    assert "tibackup[operator]" in project["optional-dependencies"]["dev"]
    assert "'.[dev,operator]'" in (ROOT / "scripts" / "setup.sh").read_text()
    assert "'.[operator]'" in (ROOT / "Dockerfile").read_text()


def test_embedded_runtime_and_dump_import_without_kopf_and_kubernetes() -> None:
    result = blocked(IMPORTS)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_cli_works_and_the_operator_says_what_to_install() -> None:
    code = "from tibackup.cli.main import main; main(sys.argv[1:])"
    for args in (["--help"], ["dump", "--help"], ["get", "bk", "--help"], ["controller", "--help"]):
        result = blocked(code, *args)
        assert result.returncode == 0, (args, result.stderr)
    for args in (["operator"], ["job", "run-backup", "--namespace", "n", "--name", "b"]):
        result = blocked(code, *args)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert (
            line.startswith("error: the Kubernetes operator") and "pip install 'tibackup[operator]'" in line
        )


def test_demo_runs_the_clones_tibackup_not_the_one_on_path(tmp_path: Path) -> None:
    """scripts/demo.sh's `tibackup` is this clone's code, even with another tibackup first on PATH."""
    text = (ROOT / "scripts" / "demo.sh").read_text()
    definition = text.split("# demo-tibackup-begin\n")[1].split("# demo-tibackup-end")[0]
    fake = tmp_path / "bin" / "tibackup"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'the wrong tibackup'\n")
    fake.chmod(0o755)
    script = f"PY={sys.executable}\n{definition}\ntibackup --help\n"
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "the wrong tibackup" not in result.stdout and "Usage:" in result.stdout
    assert "command -v tibackup" not in text
