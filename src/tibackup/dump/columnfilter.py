"""``--column-filter`` / ``--column-filter-file``: dump only chosen columns (Dumpling's newest flags).

Syntax, as Dumpling's (export/column_filter.go): each ``--column-filter`` is one TOML inline table
``{ matcher = ["db.t", …], columns = ["*", "!secret"] }``; the file holds ``[[filters]]`` entries with the
same two keys. ``matcher`` is table-filter rules (``--case-sensitive`` applies); ``columns`` are column
rules: a pattern of the same language, ``!`` to exclude, matched case-insensitively, the last matching
rule deciding and a column matched by none left out. When several filters match a table, the later
ones' rules come first. A table no filter matches keeps every column.

The data files then hold only those columns (an ``INSERT`` names them, as Dumpling's does). The table's
schema file is projected from ``SHOW CREATE TABLE``: the removed columns' lines go, and so do keys and
constraints on them; a generated column stays when every column it uses stays. Dumpling rebuilds the
statement with TiDB's parser, so its text differs in layout; tibackup keeps the server's own text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tibackup.dump.filterrules import name_matcher
from tibackup.dump.goregex import RuleError
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import UsageError

_IDENT = re.compile(r"`((?:[^`]|``)*)`")
_KEYS = ("matcher", "columns")


@dataclass(frozen=True)
class _ColumnRule:
    matches: object  # a tablefilter matcher (``.matches(lower-cased name)``)
    positive: bool


@dataclass(frozen=True)
class _Filter:
    tables: TableFilter
    rules: tuple[_ColumnRule, ...]  # last rule first


@dataclass(frozen=True)
class ColumnFilter:
    filters: tuple[_Filter, ...]

    def kept(self, schema: str, table: str, columns: Sequence[str]) -> tuple[str, ...] | None:
        """The columns kept for this table, in table order; None when no filter matches it."""
        rules = [r for f in reversed(self.filters) if f.tables.match_table(schema, table) for r in f.rules]
        if not any(f.tables.match_table(schema, table) for f in self.filters):
            return None
        kept = tuple(c for c in columns if _decide(rules, c.lower()))
        if not kept:
            raise UsageError(f"column filter selects no writable columns from table `{schema}`.`{table}`")
        return kept


def _decide(rules: list[_ColumnRule], column: str) -> bool:
    for rule in rules:
        if rule.matches.matches(column):  # type: ignore[attr-defined]
            return rule.positive
    return False


def _compile(entries: list[object], flag: str, case_sensitive: bool) -> ColumnFilter:
    if not entries:
        raise UsageError(f"--{flag} requires at least one column filter")
    filters: list[_Filter] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UsageError(f"failed to parse --{flag} {i}: write {{ matcher = [...], columns = [...] }}")
        unknown = [k for k in entry if k not in _KEYS]
        if unknown:
            prefix = "filter." if flag == "column-filter" else f"filters.{i}."
            raise UsageError(f"--{flag} contains unknown TOML keys: {', '.join(prefix + k for k in unknown)}")
        matcher, columns = entry.get("matcher") or [], entry.get("columns") or []
        if not all(isinstance(x, str) for x in [*matcher, *columns]):
            raise UsageError(f"failed to parse --{flag} {i}: matcher and columns must be lists of strings")
        if not matcher:
            raise UsageError(f"--{flag} filter {i} requires at least one matcher")
        if not columns:
            raise UsageError(f"--{flag} filter {i} requires at least one column rule")
        rules: list[_ColumnRule] = []
        for rule in columns:
            text = rule.strip()
            positive = not text.startswith("!")
            try:
                rules.append(_ColumnRule(name_matcher(text if positive else text[1:].strip()), positive))
            except RuleError as err:
                raise UsageError(
                    f"failed to parse --{flag} filter {i} columns: {rule!r}: {err.problem}; {err.hint}"
                ) from None
        tables = TableFilter.parse(matcher, case_sensitive=case_sensitive)
        filters.append(_Filter(tables, tuple(reversed(rules))))
    return ColumnFilter(tuple(filters))


def parse_column_filters(
    inline: Sequence[str], path: str, *, case_sensitive: bool, sql: str = ""
) -> ColumnFilter | None:
    """The flags' filter, or None when neither is given; UsageError with Dumpling's messages."""
    if not inline and not path:
        return None
    if inline and path:
        raise UsageError("can't specify both --column-filter and --column-filter-file at the same time")
    flag = "column-filter" if inline else "column-filter-file"
    if sql:
        raise UsageError(f"can't specify both --sql and --{flag} at the same time")
    import tomllib  # here, not at the top: most dumps have no column filter (start-up)

    if inline:
        entries: list[object] = []
        for i, text in enumerate(inline):
            try:
                entries.append(tomllib.loads("filter = " + text)["filter"])
            except tomllib.TOMLDecodeError as err:
                raise UsageError(f"failed to parse --column-filter {i}: {err}") from None
        return _compile(entries, flag, case_sensitive)
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as err:
        raise UsageError(f"failed to read --column-filter-file {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"failed to parse --column-filter-file {path}: {err}") from None
    unknown = [k for k in document if k != "filters"]
    if unknown:
        raise UsageError(f"--column-filter-file contains unknown TOML keys: {', '.join(unknown)}")
    return _compile(list(document.get("filters", [])), flag, case_sensitive)


# -- the schema file ----------------------------------------------------------------------------------
def _names(text: str) -> set[str]:
    return {m.group(1).replace("``", "`").lower() for m in _IDENT.finditer(text)}


def project_create_table(create: str, kept: Sequence[str]) -> str:
    """``SHOW CREATE TABLE`` text without the columns not kept (and keys, checks, generated columns on them)."""
    lines = create.split("\n")
    keep = {c.lower() for c in kept}
    body = [i for i, line in enumerate(lines) if line.startswith("  ")]
    out: list[str] = []
    for i, line in enumerate(lines):
        if i not in body:
            if "PARTITION BY" in line:  # (SUB)PARTITION BY …: its columns must stay
                method = line.split("PARTITION BY", 1)[1].split("(PARTITION", 1)[0]
                if not _names(method) <= keep:
                    raise UsageError("--column-filter: the partition definition references a removed column")
            out.append(line)
            continue
        entry = line.rstrip(",")
        if entry.startswith("  `"):  # a column
            name, rest = _column_name(entry)
            generated = " GENERATED ALWAYS AS " in rest or re.search(
                r" AS \(.*\) (VIRTUAL|STORED|PERSISTENT)", rest
            )
            if name.lower() in keep or (generated and _names(rest) <= keep):
                if not generated and not _names(rest) <= keep:
                    raise UsageError(
                        f"--column-filter: column `{name}` expression references a removed column"
                    )
                out.append(entry)
                keep.add(name.lower())
        else:  # a key or constraint: kept when every column it names is kept
            local = entry.split(" REFERENCES ", 1)[0]
            named = _names(local.split("(", 1)[1]) if "(" in local else set()
            if named <= keep:
                out.append(entry)
    # Put back the commas between the entries left in the body.
    first = next((k for k, line in enumerate(out) if line.startswith("  ")), None)
    if first is not None:
        last = max(k for k, line in enumerate(out) if line.startswith("  "))
        for k in range(first, last):
            out[k] += ","
    return "\n".join(out)


def _column_name(entry: str) -> tuple[str, str]:
    m = _IDENT.match(entry.strip())
    assert m is not None
    return m.group(1).replace("``", "`"), entry.strip()[m.end() :]
