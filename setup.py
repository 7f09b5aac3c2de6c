"""Only the optional C row reader lives here; everything else is in pyproject.toml.

The extension links the same C client library as mysqlclient (MariaDB Connector/C, found the way
mysqlclient finds it: pkg-config, then mariadb_config). ``optional=True``: where no compiler or headers
are available the install still succeeds and the dumper renders rows server-side instead
(``--read-mode stream|bulk``).
"""

import shlex
import subprocess

from setuptools import Extension, setup


def client_flags() -> tuple[list[str], list[str], list[str]]:
    for command in (["pkg-config", "--cflags", "--libs", "libmariadb"], ["mariadb_config", "--cflags", "--libs"]):
        try:
            flags = shlex.split(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        except (OSError, subprocess.CalledProcessError):
            continue
        include = [f[2:] for f in flags if f.startswith("-I")]
        library_dirs = [f[2:] for f in flags if f.startswith("-L")]
        libraries = [f[2:] for f in flags if f.startswith("-l")]
        return include, library_dirs, libraries
    return [], [], ["mariadb"]


include_dirs, library_dirs, libraries = client_flags()
setup(
    ext_modules=[
        Extension(
            "tibackup.dump._rowcodec",
            ["src/tibackup/dump/_rowcodec.c"],
            include_dirs=include_dirs,
            library_dirs=library_dirs,
            libraries=libraries,
            optional=True,
        )
    ]
)
