"""Run ``tibackup dump ARGS`` up to its first connection attempt and exit there: the start-up alone.

Instruction counts of it are repeatable on a busy machine, where wall times are not::

    python3 -m compileall -q src/tibackup   # as an installed package runs: from bytecode
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        "$(python3 -c 'import sys; print(sys.executable)')" bench/startup.py -h 127.0.0.1 -P PORT -u root \\
        -B db -o /tmp/out 2>&1 | grep Collected

(the interpreter's own path: a pyenv shim is a shell script). ``python3 -c pass`` under the same
command is the interpreter's share. ``bench/run.py`` reports the start-up's wall time
(bench/startuptimes.py): this script, the interpreter with and without ``site`` and mydumper's start.
"""

from __future__ import annotations

import gc
import os
import sys

from MySQLdb import _mysql


def _stop_at_connect(**kwargs: object) -> None:
    os._exit(0)


if __name__ == "__main__":
    gc.disable()  # as main() does for the dump's start-up
    _mysql.connect = _stop_at_connect
    from tibackup.cli.main import main

    main(["dump", *sys.argv[1:]])
