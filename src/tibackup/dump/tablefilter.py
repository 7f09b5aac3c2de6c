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

import re
from collections.abc import Sequence

from tibackup.dump.goregex import REGEX_HINT, GoRegex, RuleError
from tibackup.errors import UsageError
from tibackup.record import record

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


# ---------------------------------------------------------------------------------------------------
# Rules


@record(slots=True)
class _Matcher:
    """One part of a rule: ``*`` (everything), an exact name, or a compiled regular expression."""

    literal: str | None = None
    regex: re.Pattern[str] | None = None

    @property
    def matches_all(self) -> bool:
        return self.literal is None and self.regex is None

    def matches(self, name: str) -> bool:
        if self.literal is not None:
            return name == self.literal
        return self.regex is None or self.regex.search(name) is not None


@record(slots=True)
class _Rule:
    """One filter rule: a schema and a table pattern; negative rules exclude."""

    schema: _Matcher
    table: _Matcher
    positive: bool


def _show(text: str) -> str:
    return f"'{text}'" if text.isprintable() else repr(text)


def _compile(go_source: str, case_sensitive: bool, what: str) -> _Matcher:
    """Compile a Go regular expression; ``what`` names the pattern the user wrote, for errors."""
    try:
        translated = GoRegex(go_source, ignore_case=not case_sensitive)
        return _Matcher(regex=re.compile(translated.python, translated.flags))
    except RuleError as err:
        hint = REGEX_HINT if what.startswith("regular") else "write sets as [a-z] or [!0-9]"
        raise RuleError(f"invalid {what}: {err.problem}", hint) from None
    except re.error as err:  # a gap in the translation; still a pattern tibackup cannot use
        raise RuleError(f"unsupported {what}: {err}", REGEX_HINT) from None


def _parse_quoted(text: str, quote: str) -> tuple[str, str]:
    """A quoted name at the start of ``text`` (doubled quotes inside) and the text after it."""
    name: list[str] = []
    i = 1
    while i < len(text):
        if text[i] == quote:
            if text[i + 1 : i + 2] != quote:
                if not name:
                    break
                return "".join(name), text[i + 1 :]
            i += 1
        name.append(text[i])
        i += 1
    raise RuleError(
        f"unterminated or empty quoted name {_show(text)}",
        f"close the quote and double any {quote} inside the name, e.g. {quote}my{quote}{quote}db{quote}.*",
    )


def _parse_wildcard(text: str, case_sensitive: bool) -> tuple[_Matcher, str]:
    """A plain or wildcard pattern up to the next ``.`` as TiDB does it: a Go regex ``(?s)^…$``."""
    literal: list[str] = []
    source = ["(?s)^"]
    is_literal = True
    i = 0
    while i < len(text) and text[i] != ".":
        c = text[i]
        if c == "\\":
            if i + 1 == len(text):
                raise RuleError("a backslash cannot end a rule", "use [ ] to match a trailing space")
            escaped = text[i + 1]
            if escaped.isascii() and escaped.isalnum():
                raise RuleError(
                    f"cannot escape a letter or digit (\\{escaped})",
                    f"write the character itself ({escaped}); only punctuation can be escaped",
                )
            literal.append(escaped)
            source.append(re.escape(escaped) if escaped.isascii() else escaped)
            i += 2
        elif c == "*" or c == "?":
            is_literal = False
            source.append(".*" if c == "*" else ".")
            i += 1
        elif c == "[":
            is_literal = False
            end = i + 1
            while end < len(text) and text[end] != "]":
                if text[end] == "\\" and (
                    end + 1 == len(text) or (text[end + 1].isascii() and text[end + 1].isalnum())
                ):
                    end = len(text)
                    break
                end += 2 if text[end] == "\\" else 1
            if end >= len(text) or end == i + 1:
                hint = "close it with ], e.g. [a-z] or [!0-9]"
                raise RuleError(f"cannot parse the character set in {_show(text)}", hint)
            body = text[i + 1 : end]
            source.append(
                "[^" + body[1:] if body[0] == "!" else "[\\^" + body[1:] if body[0] == "^" else "[" + body
            )
            source.append("]")
            i = end + 1
        elif c in "$_" or c.isalnum() or not c.isascii():
            literal.append(c)
            source.append(re.escape(c))  # `$` too: TiDB leaves it raw, which turns it into an anchor
            i += 1
        else:
            raise RuleError(
                f"unexpected special character {c!r}",
                'escape it with \\ or quote the name with "…" or `…`',
            )
    if i == 0:
        raise RuleError("empty schema or table pattern", "write a name or * on both sides of the dot")
    rest = text[i:]
    if is_literal:
        return _Matcher(literal="".join(literal) if case_sensitive else "".join(literal).lower()), rest
    if "".join(source) == "(?s)^.*":
        return _Matcher(), rest
    return _compile("".join(source) + "$", case_sensitive, f"wildcard pattern {_show(text[:i])}"), rest


def _parse_pattern(text: str, case_sensitive: bool) -> tuple[_Matcher, str]:
    if not text or text[0] == ".":
        raise RuleError("empty schema or table pattern", "write a name or * on both sides of the dot")
    if text[0] == "/":
        match = re.match(r"/((?:\\.|[^/])+)/", text, re.DOTALL)
        if match is None:
            hint = "end it with / and write \\/ for a slash inside"
            raise RuleError(f"unterminated or empty regular expression {_show(text)}", hint)
        what = f"regular expression {_show(match.group(0))}"
        return _compile(match.group(1), case_sensitive, what), text[match.end() :]
    if text[0] in '"`':
        name, rest = _parse_quoted(text, text[0])
        return _Matcher(literal=name if case_sensitive else name.lower()), rest
    return _parse_wildcard(text, case_sensitive)


def _parse_rule(line: str, case_sensitive: bool) -> _Rule:
    positive = not line.startswith("!")
    schema, rest = _parse_pattern(line if positive else line[1:], case_sensitive)
    if not rest.startswith("."):
        raise RuleError(
            "missing '.' between schema and table patterns", "write rules as schema.table, e.g. db.*"
        )
    table, rest = _parse_pattern(rest[1:], case_sensitive)
    if rest:
        raise RuleError(
            f"unexpected {_show(rest)} after the table pattern", "quote or escape names that contain dots"
        )
    return _Rule(schema, table, positive)


def _rule_error(rule: str, err: RuleError, where: str = "") -> UsageError:
    return UsageError(f"invalid table filter rule {_show(rule)}{where}: {err.problem}; {err.hint}")


def _parse_rules(rules: Sequence[str], case_sensitive: bool) -> list[_Rule]:
    parsed: list[_Rule] = []
    for arg in rules:
        line = arg.strip(" \t")
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            try:
                parsed.append(_parse_rule(line, case_sensitive))
            except RuleError as err:
                raise _rule_error(arg, err) from None
            continue
        path = line[1:]
        try:
            with open(path, encoding="utf-8", newline="") as f:
                content = f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(
                f"cannot read table filter file {path!r} (rule {_show(arg)}): {err}; "
                "give a readable UTF-8 file (relative paths start at the current directory)"
            ) from None
        for number, raw in enumerate(content.split("\n"), start=1):
            file_line = raw.removesuffix("\r").strip(" \t")
            if not file_line or file_line.startswith("#"):
                continue
            where = f" at {path}:{number}"
            if file_line.startswith("@"):
                raise _rule_error(
                    file_line,
                    RuleError("a filter file cannot import another", "list those rules directly"),
                    where,
                )
            try:
                parsed.append(_parse_rule(file_line, case_sensitive))
            except RuleError as err:
                raise _rule_error(file_line, err, where) from None
    return parsed


# ---------------------------------------------------------------------------------------------------
# The filter


class TableFilter:
    """Which tables (and schemas) a dump selects. Build with :meth:`parse`; immutable."""

    __slots__ = ("_case_sensitive", "_databases", "_rules", "_rules_reversed", "_tables")

    def __init__(
        self,
        rules: tuple[str, ...],
        compiled: list[_Rule],
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
        return cls(tuple(rules), _parse_rules(rules, case_sensitive), case_sensitive=case_sensitive)

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
                raise UsageError(f"-T/--tables-list takes qualified names db.table, but got {_show(name)}")
            pairs.append((schema, table))
        norm = (lambda s: s) if case_sensitive else str.lower
        compiled: list[_Rule] = [
            _Rule(_Matcher(literal=norm(schema)), _Matcher(literal=norm(table)), True)
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


def name_matcher(pattern: str) -> _Matcher:
    """One pattern of the language (wildcard, quoted name or /regex/), case-insensitive: a column rule of
    TiDB's ``ParseColumnFilterRules``. Match lower-cased names. Raises RuleError."""
    matcher, rest = _parse_pattern(pattern, case_sensitive=False)
    if rest:
        raise RuleError(f"unexpected {_show(rest)} after the pattern", "quote or escape the name")
    return matcher
