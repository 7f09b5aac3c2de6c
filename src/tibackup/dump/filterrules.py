"""The table-filter language's rules (tibackup/dump/tablefilter.py describes it), parsed into matchers.

A rule is two patterns, schema and table, each compiled once into a ``Matcher`` (everything, an exact
name or a regular expression); ``@file`` rules are read when parsed. What the rules select, and the
filter Dumpling's flags make, is tablefilter.py's ``TableFilter``; column filters reuse ``name_matcher``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tibackup.dump.goregex import REGEX_HINT, GoRegex, RuleError
from tibackup.errors import UsageError
from tibackup.record import record

__all__ = ["Matcher", "Rule", "name_matcher", "parse_rules", "show"]


@record(slots=True)
class Matcher:
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
class Rule:
    """One filter rule: a schema and a table pattern; negative rules exclude."""

    schema: Matcher
    table: Matcher
    positive: bool


def show(text: str) -> str:
    """``text`` as an error message quotes it: in single quotes, or as its repr when not printable."""
    return f"'{text}'" if text.isprintable() else repr(text)


def _compile(go_source: str, case_sensitive: bool, what: str) -> Matcher:
    """Compile a Go regular expression; ``what`` names the pattern the user wrote, for errors."""
    try:
        translated = GoRegex(go_source, ignore_case=not case_sensitive)
        return Matcher(regex=re.compile(translated.python, translated.flags))
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
        f"unterminated or empty quoted name {show(text)}",
        f"close the quote and double any {quote} inside the name, e.g. {quote}my{quote}{quote}db{quote}.*",
    )


def _parse_wildcard(text: str, case_sensitive: bool) -> tuple[Matcher, str]:
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
                raise RuleError(f"cannot parse the character set in {show(text)}", hint)
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
        return Matcher(literal="".join(literal) if case_sensitive else "".join(literal).lower()), rest
    if "".join(source) == "(?s)^.*":
        return Matcher(), rest
    return _compile("".join(source) + "$", case_sensitive, f"wildcard pattern {show(text[:i])}"), rest


def _parse_pattern(text: str, case_sensitive: bool) -> tuple[Matcher, str]:
    if not text or text[0] == ".":
        raise RuleError("empty schema or table pattern", "write a name or * on both sides of the dot")
    if text[0] == "/":
        match = re.match(r"/((?:\\.|[^/])+)/", text, re.DOTALL)
        if match is None:
            hint = "end it with / and write \\/ for a slash inside"
            raise RuleError(f"unterminated or empty regular expression {show(text)}", hint)
        what = f"regular expression {show(match.group(0))}"
        return _compile(match.group(1), case_sensitive, what), text[match.end() :]
    if text[0] in '"`':
        name, rest = _parse_quoted(text, text[0])
        return Matcher(literal=name if case_sensitive else name.lower()), rest
    return _parse_wildcard(text, case_sensitive)


def _parse_rule(line: str, case_sensitive: bool) -> Rule:
    positive = not line.startswith("!")
    schema, rest = _parse_pattern(line if positive else line[1:], case_sensitive)
    if not rest.startswith("."):
        raise RuleError(
            "missing '.' between schema and table patterns", "write rules as schema.table, e.g. db.*"
        )
    table, rest = _parse_pattern(rest[1:], case_sensitive)
    if rest:
        raise RuleError(
            f"unexpected {show(rest)} after the table pattern", "quote or escape names that contain dots"
        )
    return Rule(schema, table, positive)


def _rule_error(rule: str, err: RuleError, where: str = "") -> UsageError:
    return UsageError(f"invalid table filter rule {show(rule)}{where}: {err.problem}; {err.hint}")


def parse_rules(rules: Sequence[str], case_sensitive: bool) -> list[Rule]:
    parsed: list[Rule] = []
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
                f"cannot read table filter file {path!r} (rule {show(arg)}): {err}; "
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


def name_matcher(pattern: str) -> Matcher:
    """One pattern of the language (wildcard, quoted name or /regex/), case-insensitive: a column rule of
    TiDB's ``ParseColumnFilterRules``. Match lower-cased names. Raises RuleError."""
    matcher, rest = _parse_pattern(pattern, case_sensitive=False)
    if rest:
        raise RuleError(f"unexpected {show(rest)} after the pattern", "quote or escape the name")
    return matcher
