"""The TiDB table-filter language (Dumpling's ``-f/--filter``), compiled once, matched per table.

A rule is ``schema-pattern.table-pattern``. Each pattern is one of:

* a plain name or wildcard: identifier characters ``[0-9A-Za-z$_]`` and any non-ASCII character, with
  ``*`` (any run), ``?`` (one character), ``[a-z]`` and ``[!a-z]`` (one character in / not in a set);
  ``\\`` makes the next punctuation character literal (``\\.``, ``\\*``); a backslash before a letter or
  digit, or at the end of the rule, is an error. A pattern with no wildcard is an exact name;
* ``"…"`` or ```…``` — a quoted, literal name (double the quote character to include it); a quote must
  cover the whole part;
* ``/regex/`` — a Go (RE2) regular expression (write ``\\/`` for a slash). Like TiDB it is *searched*, not
  anchored: ``/b/`` matches ``db01``; anchor with ``^…$`` yourself.

A rule starting with ``!`` excludes; ``#`` starts a comment; blank rules are ignored; leading and trailing
spaces and tabs are trimmed. ``@path`` reads one rule per line from a file (relative paths are relative to
the working directory); a filter file cannot import another. Rules are tried from the last to the first
and the first that matches decides; a table matched by no rule is excluded, so an exclusion-only filter
selects nothing (start with ``*.*``). Matching is case-insensitive unless ``case_sensitive=True``.

Dumpling's default filter is ``*.*`` plus ``!/^(mysql|sys|INFORMATION_SCHEMA|…)$/.*``; the exclusion lives
only in that default, so a user filter replaces it entirely and an explicit ``*.*`` does select the
system schemas (as in Dumpling).

Where tibackup knowingly differs from TiDB's implementation (``pkg/util/table-filter``):

* ``$`` inside a wildcard pattern is the literal identifier character the documentation promises; TiDB
  copies it into its regular expression unescaped, where it becomes an end anchor (``t$*`` matches ``t``).
* An empty schema or table pattern (``.t``, ``db.``) is rejected; TiDB accepts ``.t`` as "the schema named
  ''", which can never match.
* Our default exclusion ignores case even with ``case_sensitive=True``, so MySQL's lower-case
  ``information_schema`` and ``performance_schema`` stay excluded; Dumpling's default would let them
  through under ``--case-sensitive``.
* Regular expressions are translated from Go's syntax to Python's: everything RE2 accepts except Unicode
  classes (``\\p{…}``) and the limit on nested repeat counts; what RE2 rejects (look-around,
  back-references, possessive repeats) is rejected here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from tibackup.dump.filterrules import Matcher, Rule, parse_rules, show
from tibackup.errors import UsageError

__all__ = ["DEFAULT_RULES", "TableFilter", "default_filter", "filter_from_dumpling_flags"]

SYSTEM_SCHEMAS = (
    "mysql",
    "sys",
    "INFORMATION_SCHEMA",
    "PERFORMANCE_SCHEMA",
    "METRICS_SCHEMA",
    "INSPECTION_SCHEMA",
)
# Dumpling's own default, verbatim: an explicit `--filter` equal to it still counts as "no filter" for -T.
DUMPLING_DEFAULT_RULES = ("*.*", "!/^(" + "|".join(SYSTEM_SCHEMAS) + ")$/.*")
DEFAULT_RULES: tuple[str, ...] = ("*.*", "!/(?i)^(" + "|".join(SYSTEM_SCHEMAS) + ")$/.*")


class TableFilter:
    """Which tables (and schemas) a dump selects. Build with :meth:`parse`; immutable."""

    __slots__ = ("_case_sensitive", "_databases", "_rules", "_rules_reversed", "_tables")

    def __init__(
        self,
        rules: tuple[str, ...],
        compiled: list[Rule],
        *,
        case_sensitive: bool,
        databases: tuple[str, ...] | None = None,
        tables: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self._rules = rules
        self._rules_reversed = tuple(reversed(compiled))  # last matching rule wins
        self._case_sensitive = case_sensitive
        self._databases = databases
        self._tables = tables

    @classmethod
    def parse(cls, rules: Sequence[str], *, case_sensitive: bool = False) -> TableFilter:
        """Compile ``rules`` (``@file`` rules are read now); raises UsageError naming a bad rule."""
        if isinstance(rules, str):
            rules = [rules]
        return cls(tuple(rules), parse_rules(rules, case_sensitive), case_sensitive=case_sensitive)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules as given (``@file`` rules unexpanded)."""
        return self._rules

    @property
    def case_sensitive(self) -> bool:
        return self._case_sensitive

    @property
    def databases(self) -> tuple[str, ...] | None:
        """Dumpling's ``-B`` list, if any: every one must exist (Dumpling fails on unknown databases)."""
        return self._databases

    @property
    def tables(self) -> tuple[tuple[str, str], ...] | None:
        """Dumpling's ``-T`` list as (schema, table), if any: exactly these are dumped, and must exist."""
        return self._tables

    def _normalize(self, name: str) -> str:
        return name if self._case_sensitive else name.lower()

    def match_table(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` is selected: the last rule matching both names decides."""
        if self._databases is not None and schema not in self._databases:
            return False
        schema, table = self._normalize(schema), self._normalize(table)
        for rule in self._rules_reversed:
            if rule.schema.matches(schema) and rule.table.matches(table):
                return rule.positive
        return False

    def match_schema(self, schema: str) -> bool:
        """Whether the schema takes part in the dump (its tables are listed, its CREATE DATABASE written).

        As in TiDB: the last rule whose schema pattern matches and that either selects or excludes the
        whole schema (table pattern ``*``) decides. It can be true for a schema none of whose tables
        is then selected (``db.t`` selects schema ``db`` even if it has no table ``t``).
        """
        if self._databases is not None and schema not in self._databases:
            return False
        schema = self._normalize(schema)
        for rule in self._rules_reversed:
            if rule.schema.matches(schema) and (rule.positive or rule.table.matches_all):
                return rule.positive
        return False

    def __repr__(self) -> str:
        extra = f", databases={self._databases!r}" if self._databases is not None else ""
        return f"TableFilter(rules={self._rules!r}, case_sensitive={self._case_sensitive!r}{extra})"


def default_filter(*, case_sensitive: bool = False) -> TableFilter:
    """Every table except those of the system schemas, whatever their case (``DEFAULT_RULES``)."""
    return TableFilter.parse(DEFAULT_RULES, case_sensitive=case_sensitive)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def filter_from_dumpling_flags(
    databases: list[str], tables: list[str], filter_rules: list[str], case_sensitive: bool
) -> TableFilter:
    """The filter Dumpling derives from ``-B``, ``-T``, ``-f/--filter`` and ``--case-sensitive``.

    Lists arrive already split at commas. An empty ``filter_rules`` (or Dumpling's own default) means
    no ``--filter`` was given, so the default applies. As in Dumpling:

    * ``-T db.tbl`` selects exactly those tables, split at the first dot, names taken literally (no
      wildcards, system schemas allowed). It cannot be combined with a ``--filter``, and ``-B`` is
      then ignored (Dumpling dumps the ``-T`` tables only).
    * ``-B`` narrows the filter to those databases, named exactly as the server lists them. A ``-B``
      database the filter excludes is an error (Dumpling reports it as an unknown database); whether
      each exists can only be checked against the server — see :attr:`TableFilter.databases`.
    """
    user_filter = bool(filter_rules) and tuple(filter_rules) not in (DEFAULT_RULES, DUMPLING_DEFAULT_RULES)
    if tables:
        if user_filter:
            raise UsageError(
                f"cannot pass -T/--tables-list together with --filter ({', '.join(filter_rules)}); "
                "use one of them, e.g. --filter 'db.tbl' instead of -T db.tbl"
            )
        pairs: list[tuple[str, str]] = []
        for name in tables:
            schema, dot, table = name.partition(".")
            if not dot or not schema or not table:
                raise UsageError(f"-T/--tables-list takes qualified names db.table, but got {show(name)}")
            pairs.append((schema, table))
        norm = (lambda s: s) if case_sensitive else str.lower
        compiled: list[Rule] = [
            Rule(Matcher(literal=norm(schema)), Matcher(literal=norm(table)), True)
            for schema, table in pairs
        ]
        rules = tuple(f"{_quote(schema)}.{_quote(table)}" for schema, table in pairs)
        return TableFilter(rules, compiled, case_sensitive=case_sensitive, tables=tuple(pairs))
    base = TableFilter.parse(filter_rules if user_filter else DEFAULT_RULES, case_sensitive=case_sensitive)
    if not databases:
        return base
    excluded = [db for db in databases if not base.match_schema(db)]
    if excluded:
        raise UsageError(
            f"-B/--database {', '.join(excluded)} is excluded by the table filter ({', '.join(base.rules)}); "
            f"add a --filter rule that selects it, e.g. --filter '{_quote(excluded[0])}.*'"
        )
    return TableFilter(
        base.rules,
        list(reversed(base._rules_reversed)),
        case_sensitive=case_sensitive,
        databases=tuple(databases),
    )
