"""Where the embedded runtime keeps its state, and how it keeps it private (directory 0700, files 0600)."""

from __future__ import annotations

import os
from pathlib import Path

from tibackup.resources.validation import object_dir

ENV_STATE_DIR = "TIBACKUP_STATE_DIR"
DB_FILE = "state.db"
CONTROLLER_LOCK = "controller.lock"


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """``$TIBACKUP_STATE_DIR``, else ``$XDG_STATE_HOME/tibackup``, else ``~/.local/state/tibackup``."""
    env = dict(os.environ) if environ is None else environ
    if env.get(ENV_STATE_DIR):
        return Path(env[ENV_STATE_DIR]).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "tibackup"


def uploads_dir(state_dir: Path, namespace: str, name: str) -> Path:
    """The upload journal of a Backup's runs (``storage.journal.FileJournal``): ``uploads/<ns>/<name>``.

    Refuses (InvalidSpecError) a namespace or name that is not DNS-1123, as ``staging_dir`` does."""
    return object_dir(state_dir / "uploads", namespace, name)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it owner-only (0700): it holds Secrets."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)
    return path


def staging_dir(state_dir: Path, namespace: str, name: str) -> Path:
    """Where a staged Backup keeps its files until they are uploaded: ``staging/<ns>/<name>``.

    Refuses (InvalidSpecError) a namespace or name that is not DNS-1123, so no path leaves the folder."""
    return object_dir(state_dir / "staging", namespace, name)
