"""The HTTP listeners of the long-running commands (metrics, health): a busy port is one line naming the flag."""

from __future__ import annotations

import errno
import socket
from typing import Any

from tibackup.errors import UsageError

# The default metrics port of the controller and the operator. Not 9090: that is Prometheus' own port,
# and a Prometheus on the same machine (or Pod network namespace) would collide with it.
METRICS_PORT = 9840


def _busy(address: str, port: int, flag: str, exc: OSError) -> UsageError:
    cause = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
    return UsageError(
        f"cannot listen on {address}:{port} ({cause}); choose another port with {flag} (0: none)"
    )


def serve_metrics(registry: Any, port: int, address: str, flag: str = "--metrics-port") -> None:
    """Serve ``registry`` at http://address:port/metrics in a background thread."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise _busy(address, port, flag, exc) from None


def check_free(address: str, port: int, flag: str) -> None:
    """Fail now, in one line, if another process holds ``port`` (for listeners opened later, e.g. kopf's)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise _busy(address, port, flag, exc) from None
