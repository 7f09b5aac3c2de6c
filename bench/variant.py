"""tibackup with one experimental change patched in, for A/Bs of bench/servercpu.py (issue 12).

    python bench/variant.py VARIANT[,VARIANT...] dump ...   # the rest as for `tibackup`

Variants: ``rcvbuf=N`` (SO_RCVBUF of every dump connection, set right after it connects), ``nohalves``
(no chunk read in halves by two workers), ``noquarters`` (the last chunk not in quarters), ``batch=N``
(the C reader hands over at most N bytes at a time instead of 1 MiB).
"""

from __future__ import annotations

import socket
import sys
from typing import Any


def apply(variant: str) -> None:
    from tibackup.dump import clientread, conn, dumper

    name, _, value = variant.partition("=")
    if name == "rcvbuf":
        size = int(value)
        original = conn.DB.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            sock = socket.socket(fileno=self._c.fileno())  # the connection's own socket, borrowed
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            finally:
                sock.detach()

        conn.DB.__init__ = init  # type: ignore[method-assign]
    elif name == "nohalves":
        dumper.read_in_halves = lambda *_: False  # type: ignore[assignment]
    elif name == "noquarters":
        dumper.last_in_quarters = lambda *_: False  # type: ignore[assignment]
    elif name == "batch":
        clientread.READ_BATCH_BYTES = int(value)
    else:
        raise SystemExit(f"unknown variant {variant!r}")


def main() -> None:
    for variant in sys.argv[1].split(","):
        apply(variant)
    from tibackup.cli.main import main as tibackup

    sys.argv = ["tibackup", *sys.argv[2:]]
    tibackup()


if __name__ == "__main__":
    main()
