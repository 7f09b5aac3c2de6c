"""Only the optional C row encoder lives here; everything else is in pyproject.toml.

``optional=True``: where no compiler is available the install still succeeds and the dumper renders rows
server-side instead (``--read-mode stream|bulk``).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tibackup.dump._rowcodec", ["src/tibackup/dump/_rowcodec.c"], optional=True)])
