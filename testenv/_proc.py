"""Process helpers shared by the throwaway servers: free ports, waiting, memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """A throwaway server did not come up; the message names its log file."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together so the kernel cannot hand out one twice)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll check() until it returns True or timeout seconds pass; returns the last result.

    Other exceptions count as "not yet"; a ServerStartError (the process died) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except ServerStartError:
            raise
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def reap(pid: int) -> None:
    """Collect the exit status if pid is our child (avoids zombies); ignore otherwise."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Send sig to pid and wait for it to exit; SIGKILL after timeout. True if it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def rss_bytes(pid: int) -> int:
    """Resident memory of pid and all its descendants, in bytes (0 if gone)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().split(") ", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def die_with_parent() -> None:
    """preexec_fn: have the kernel SIGKILL the child when the process that started it dies, so a killed
    pytest run leaves no servers behind (Linux only; a no-op elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def wait_for_server(
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    log_file: Path,
    stop: Callable[[], Any],
    procs: Mapping[str, subprocess.Popen[bytes] | None] | None = None,
) -> None:
    """Wait until ``ready()``; fail at once if one of ``procs`` exits, and on timeout stop the server and
    fail with where it should answer. Both failures show the log."""

    def up() -> bool:
        for name, proc in (procs or {}).items():
            if proc is not None and proc.poll() is not None:
                raise ServerStartError(
                    f"{name} exited with {proc.returncode}; log: {log_file}\n{log_tail(log_file)}"
                )
        return ready()

    if not wait_until(up, timeout, 0.2):
        stop()
        raise ServerStartError(
            f"{what} did not answer within {timeout:.0f}s; log: {log_file}\n{log_tail(log_file)}"
        )


def retry_port_clash(
    start_once: Callable[[], T], log_file: Path, before_retry: Callable[[], Any] = lambda: None
) -> T:
    """``start_once()``, tried up to three times while the log says a port was already in use: another
    process may take a free port between our choosing it and the server binding it."""
    for attempt in range(3):
        try:
            return start_once()
        except ServerStartError:
            if attempt == 2 or "already in use" not in log_tail(log_file, 200).lower():
                raise
            before_retry()
            log_file.rename(log_file.with_suffix(f".failed{attempt}.log"))
    raise AssertionError("unreachable")


class ManagedServer:
    """What every throwaway server shares: a context manager around start/stop, and its memory."""

    # Where the server writes its pid; None for a server somebody else started (attach). A server of
    # several daemons (Ceph) overrides ``pid``.
    pid_file: Path | None = None

    @property
    def pid(self) -> int | None:
        if self.pid_file is None:
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, timeout: float = 60.0, detach: bool = False) -> Self:
        raise NotImplementedError

    def stop(self, remove: bool | None = None) -> None:
        raise NotImplementedError

    def rss_bytes(self) -> int:
        pid = self.pid
        return rss_bytes(pid) if pid else 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
