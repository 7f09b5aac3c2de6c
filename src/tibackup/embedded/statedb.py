"""Opening the state database, and what a full or failing disk under the state directory means to a user.

SQLite reports a full disk as "database or disk is full" or, when it cannot even grow the WAL index of
a database nobody has open, as "disk I/O error". Either becomes one ``StateDirError`` line saying which
directory is full and what to do. Reading must keep working on a full disk (``get``/``describe`` are how
an operator sees what is going on): a read-only open that cannot create the WAL index reads the
database file as it is (SQLite's ``immutable``), warning that changes not yet checkpointed into it (by
a process that was killed) may be missing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from tibackup.control.interrupted import NEARLY_FULL_BYTES  # below it, an I/O error means a full disk
from tibackup.errors import TibackupError

log = logging.getLogger("tibackup.embedded")
_SQLITE_IOERR, _SQLITE_FULL = 10, 13


class StateDirError(TibackupError):
    """The state directory cannot be written (full disk, failing disk)."""

    exit_code = 1
    reason = "StateDirUnavailable"


def _is_disk_problem(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (_SQLITE_IOERR, _SQLITE_FULL)
        return str(exc) in ("disk I/O error", "database or disk is full")
    return False


def free_bytes(state_dir: Path) -> int | None:
    """The bytes free for an unprivileged user on the disk of ``state_dir``; None when it cannot be read."""
    try:
        return shutil.disk_usage(state_dir).free
    except OSError:
        return None


def disk_error(state_dir: Path, exc: BaseException) -> StateDirError:
    """The one-line error for ``exc``, a disk problem under ``state_dir``."""
    free = free_bytes(state_dir)
    if (
        (free is not None and free < NEARLY_FULL_BYTES)
        or "full" in str(exc)
        or getattr(exc, "errno", 0) == errno.ENOSPC
    ):
        return StateDirError(
            f"the disk of the state directory {state_dir} is full ({free if free is not None else '?'} bytes "
            "free), so nothing could be saved: free space on it, or move the state elsewhere "
            "(--state-dir or $TIBACKUP_STATE_DIR); `tibackup get` and `describe` still work meanwhile"
        )
    return StateDirError(
        f"the state database under {state_dir} cannot be written ({exc}): check that disk (space, quota, "
        "errors in the kernel log); `tibackup get` and `describe` still work meanwhile"
    )


@contextlib.contextmanager
def translated(state_dir: Path) -> Iterator[None]:
    """Turn a disk problem raised inside into a ``StateDirError``; anything else passes unchanged."""
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        if _is_disk_problem(exc):
            raise disk_error(state_dir, exc) from None
        raise


def connect(path: Path, schema: str, read_only: bool = False) -> sqlite3.Connection:
    """The state database at ``path`` in WAL mode with ``schema`` created; see the module doc for a full
    disk (``read_only``: the caller only reads, so a read-only view is better than an error)."""
    try:
        with translated(path.parent):
            return _open(path, schema)
    except StateDirError as error:
        if not read_only or not path.exists():
            raise
        wal = Path(f"{path}-wal")
        stale = wal.exists() and wal.stat().st_size > 0
        log.warning(
            "warning: %s; showing the state read-only%s",
            error.message.split(", so ", 1)[0],
            " (changes of a process that was killed may be missing)" if stale else "",
        )
        return sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True, isolation_level=None)


def _open(path: Path, schema: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db
