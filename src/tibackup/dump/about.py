"""What ``tibackup dump -V`` prints and the first line of its log, as Dumpling's (dumpling/cli/versions.go).

Dumpling prints its release, git hash, branch, build time and Go version; a Python install has no build
stamp, so the equivalents are tibackup's version, the Python that runs it, and whether the C row reader
(``_rowcodec``) is there — the one build-time fact that changes how a dump runs.
"""

from __future__ import annotations

import sys

from tibackup import __version__


def version_fields() -> dict[str, str]:
    from MySQLdb import _mysql

    from tibackup.dump.conn import HAVE_ROW_READER

    client = _mysql.get_client_info()
    reader = f"yes (client library {client})" if HAVE_ROW_READER else "no (the server renders rows: --read-mode bulk or stream)"
    return {
        "Release Version": __version__,
        "Python Version": python_version(),
        "C Row Reader": reader,
    }


def python_version() -> str:
    """``platform.python_implementation()`` and ``python_version()`` (``CPython 3.11.7``) from ``sys``: the
    platform module costs a dump's start-up more than a millisecond."""
    names = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython", "jython": "Jython"}
    return f"{names.get(sys.implementation.name, sys.implementation.name)} {sys.version.split()[0]}"


def long_version() -> str:
    """``-V``: one field a line, aligned as Dumpling aligns them."""
    fields = version_fields()
    width = max(len(name) for name in fields) + 2
    return "".join(f"{(name[0] + name[1:].lower() + ':'):<{width}}{value}\n" for name, value in fields.items())


def welcome_line() -> str:
    """The log's first line (Dumpling: ``["Welcome to dumpling"] ["Release Version"=…] …``)."""
    return "Welcome to tibackup dump " + " ".join(f'["{k}"={v}]' for k, v in version_fields().items())
