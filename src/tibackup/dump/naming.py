"""Dumpling's file names: ``{db}-schema-create.sql``, ``{db}.{table}-schema.sql``, ``{db}.{table}.{index}.sql``.

Database and table names go through Dumpling's ``fn`` escape: a character that is unsafe in a file name
(or the word ``-schema``, which would confuse loaders) becomes ``%XX``.
"""

from __future__ import annotations

import re

from tibackup.errors import UsageError

_UNSAFE = re.compile(r'[\x00-\x1f%"*./:<>?\\|]|-(?i:schema)')
DEFAULT_TEMPLATE = "{{fn .DB}}.{{fn .Table}}.{{.Index}}"
_FIELD = re.compile(r"\{\{\s*(fn\s+)?\.(DB|Table|Index)\s*\}\}")


def escape_name(name: str) -> str:
    return _UNSAFE.sub(lambda m: f"%{ord(m.group(0)[0]):02X}{m.group(0)[1:]}", name)


def schema_create_name(db: str) -> str:
    return f"{escape_name(db)}-schema-create.sql"


def table_schema_name(db: str, table: str) -> str:
    return f"{escape_name(db)}.{escape_name(table)}-schema.sql"


def view_schema_name(db: str, view: str) -> str:
    return f"{escape_name(db)}.{escape_name(view)}-schema-view.sql"


def sequence_schema_name(db: str, sequence: str) -> str:
    return f"{escape_name(db)}.{escape_name(sequence)}-schema-sequence.sql"


def check_template(template: str) -> str:
    """Accept the subset of Go templates Dumpling users write; reject the rest with a clear error."""
    template = template or DEFAULT_TEMPLATE
    leftover = _FIELD.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise UsageError(
            f"--output-filename-template {template!r}: only {{{{.DB}}}}, {{{{.Table}}}}, {{{{.Index}}}} and "
            f"{{{{fn .DB}}}}/{{{{fn .Table}}}} are supported"
        )
    if ".Index" not in template:
        raise UsageError(
            f"--output-filename-template {template!r} must contain {{{{.Index}}}} or files collide"
        )
    return template


class DataFileNamer:
    """Names of one chunk's data files, in Dumpling's index format."""

    def __init__(
        self, template: str, db: str, table: str, chunk: int, *, rows: bool, file_size: bool
    ) -> None:
        self.template = check_template(template)
        self.db, self.table, self.chunk = db, table, chunk
        self.rows, self.file_size = rows, file_size

    def index(self, file_index: int) -> str:
        if self.rows and self.file_size:
            return f"{self.chunk:09d}{file_index:04d}"
        if self.file_size:
            return f"{file_index:09d}"
        return f"{self.chunk:09d}"

    def name(self, file_index: int, extension: str) -> str:
        values = {"DB": self.db, "Table": self.table, "Index": self.index(file_index)}

        def field(m: re.Match[str]) -> str:
            value = values[m.group(2)]
            return escape_name(value) if m.group(1) else value

        return f"{_FIELD.sub(field, self.template)}.{extension}"
