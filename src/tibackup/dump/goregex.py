"""Go (RE2) regular expressions translated to Python's ``re``, for the table filter.

TiDB compiles both ``/regex/`` parts and wildcards to Go regular expressions, so the filter needs Go's
syntax and semantics: ASCII-only ``\\d \\s \\w``, POSIX classes, Go's flags and repeat limits. Anything
RE2 rejects (look-around, back-references, possessive repeats) is rejected here too.
"""

from __future__ import annotations

import re

from tibackup.record import evolve, record


class RuleError(Exception):
    """A problem with one rule; ``hint`` says how to fix it."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


REGEX_HINT = "fix the regular expression (Go RE2 syntax, e.g. /^db[0-9]+$/)"

# ---------------------------------------------------------------------------------------------------
# Go (RE2) regular expressions → Python `re`. Both wildcards and /regex/ parts go through here, because
# TiDB compiles wildcards to Go regular expressions too (a `[…]` set is handed to Go verbatim).

_Ranges = list[tuple[int, int]]
_MAX_RUNE = 0x10FFFF
_PERL_CLASSES: dict[str, _Ranges] = {  # Go's \d \s \w are ASCII-only, unlike Python's
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
_POSIX_CLASSES: dict[str, _Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_REPEAT = r"\{([0-9]+)(,([0-9]*))?\}"  # compiled on first use (re caches it): most rules have no {n,m}
_OCTAL = "01234567"


def _complement(ranges: _Ranges) -> _Ranges:
    out: _Ranges = []
    next_lo = 0
    for lo, hi in sorted(ranges):
        if lo > next_lo:
            out.append((next_lo, lo - 1))
        next_lo = max(next_lo, hi + 1)
    if next_lo <= _MAX_RUNE:
        out.append((next_lo, _MAX_RUNE))
    return out


def _class_char(code: int) -> str:
    return chr(code) if code < 0x80 and chr(code).isalnum() else f"\\U{code:08x}"


def _class_source(ranges: _Ranges, negated: bool) -> str:
    body = "".join(
        _class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in ranges
    )
    if not body:
        return "[\\s\\S]" if negated else "(?!)"
    return f"[{'^' if negated else ''}{body}]"


@record
class _Flags:
    """The flags in effect at a point of the pattern ((?i), (?m), (?s))."""

    i: bool
    m: bool = False
    s: bool = False


class _Frame:
    """One open group of the pattern being translated (changed as the translation goes on)."""

    __slots__ = ("after_repeat", "can_repeat", "flags", "parts")

    def __init__(self, flags: _Flags, parts: list[str]) -> None:
        self.flags, self.parts = flags, parts
        self.can_repeat = self.after_repeat = False


class GoRegex:
    """Translate one Go regular expression; ``python`` is the result, compiled with ``flags``."""

    def __init__(self, src: str, *, ignore_case: bool) -> None:
        self.src = src
        self.pos = 0
        self.ignore_case = ignore_case
        self.flags = re.IGNORECASE if ignore_case else 0
        self.python = self._translate()

    def _fail(self, problem: str) -> RuleError:
        return RuleError(problem, REGEX_HINT)

    def _translate(self) -> str:
        stack = [_Frame(_Flags(i=self.ignore_case), [])]
        src = self.src
        while self.pos < len(src):
            frame, c = stack[-1], src[self.pos]
            if c == "(":
                self._open_group(stack)
                continue
            if c == ")":
                if len(stack) == 1:
                    raise self._fail("unexpected )")
                stack.pop()
                self._atom(stack[-1], "(?:" + "".join(frame.parts) + ")")
                self.pos += 1
                continue
            if c == "|":
                frame.parts.append("|")
                frame.can_repeat = frame.after_repeat = False
                self.pos += 1
                continue
            repeat = re.compile(_REPEAT).match(src, self.pos) if c == "{" else None
            if repeat and not re.match(r"0[0-9]", repeat.group(1)):  # Go reads `{01}` literally
                self._repeat(frame, repeat.group(0), repeat)
                continue
            if c in "*+?":
                self._repeat(frame, c, None)
                continue
            self.pos += 1
            if c == "^":
                self._atom(frame, r"(?:\A|(?<=\n))" if frame.flags.m else r"\A")
            elif c == "$":
                self._atom(frame, r"(?:\Z|(?=\n))" if frame.flags.m else r"\Z")
            elif c == ".":
                self._atom(frame, "(?s:.)" if frame.flags.s else ".")
            elif c == "[":
                self.pos -= 1
                self._atom(frame, self._folded(frame, self._parse_class()))
            elif c == "\\":
                self._escape(frame)
            else:
                self._atom(frame, self._folded(frame, re.escape(c)))
        if len(stack) > 1:
            raise self._fail("missing closing )")
        return "".join(stack[0].parts)

    def _folded(self, frame: _Frame, atom: str) -> str:
        if frame.flags.i == self.ignore_case:
            return atom
        return f"(?{'' if frame.flags.i else '-'}i:{atom})"

    @staticmethod
    def _atom(frame: _Frame, atom: str) -> None:
        frame.parts.append(atom)
        frame.can_repeat, frame.after_repeat = True, False

    def _repeat(self, frame: _Frame, op: str, counts: re.Match[str] | None) -> None:
        if frame.after_repeat:
            raise self._fail(f"invalid nested repetition operator {op!r}")
        if not frame.can_repeat:
            raise self._fail(f"missing argument to repetition operator {op!r}")
        if counts is not None:
            low, high = int(counts.group(1)), counts.group(3)
            high_n = low if counts.group(2) is None else (int(high) if high else None)
            if low > 1000 or (high_n is not None and (high_n > 1000 or high_n < low)):
                raise self._fail(f"invalid repeat count {op!r}")
        self.pos += len(op)
        if self.src.startswith("?", self.pos):  # non-greedy: irrelevant to whether a name matches
            self.pos += 1
        frame.parts[-1] = f"(?:{frame.parts[-1]}){op}"
        frame.can_repeat, frame.after_repeat = False, True

    def _open_group(self, stack: list[_Frame]) -> None:
        frame, src = stack[-1], self.src
        self.pos += 1
        if not src.startswith("?", self.pos):
            stack.append(_Frame(frame.flags, []))
            return
        self.pos += 1
        named = re.compile(r"P?<([0-9A-Za-z_]+)>").match(src, self.pos)
        if named:
            self.pos = named.end()
            stack.append(_Frame(frame.flags, []))
            return
        flags, negate, saw_flag = frame.flags, False, False
        while self.pos < len(src):
            c = src[self.pos]
            self.pos += 1
            if c in "imsU":
                value = not negate
                flags = evolve(flags, i=value) if c == "i" else flags
                flags = evolve(flags, m=value) if c == "m" else flags
                flags = evolve(flags, s=value) if c == "s" else flags
                saw_flag = True  # U (ungreedy) cannot change whether a name matches
            elif c == "-" and not negate:
                negate, saw_flag = True, False
            elif c in ":)" and (saw_flag or not negate):
                if c == ":":
                    stack.append(_Frame(flags, []))
                else:
                    frame.flags = flags
                    frame.can_repeat = frame.after_repeat = False
                return
            else:
                break
        raise self._fail("unsupported group syntax: Go has no look-around, back-references or atomic groups")

    def _escape(self, frame: _Frame) -> None:
        src = self.src
        if self.pos >= len(src):
            raise self._fail("trailing backslash")
        c = src[self.pos]
        if c == "Q":
            end = src.find("\\E", self.pos + 1)
            literal = src[self.pos + 1 :] if end < 0 else src[self.pos + 1 : end]
            self.pos = len(src) if end < 0 else end + 2
            for char in literal:
                self._atom(frame, self._folded(frame, re.escape(char)))
            return
        simple = {"A": r"\A", "z": r"\Z", "b": r"(?a:\b)", "B": r"(?a:\B)"}.get(c)
        if simple is not None:
            self.pos += 1
            self._atom(frame, simple)
            return
        perl = self._perl_class()
        if perl is not None:
            self._atom(frame, _class_source(perl, negated=False))
            return
        code = self._escaped_char()
        self._atom(frame, self._folded(frame, re.escape(chr(code))))

    def _perl_class(self) -> _Ranges | None:
        """``\\d \\D \\s \\S \\w \\W`` at pos (just after the backslash), as explicit ASCII ranges."""
        c = self.src[self.pos]
        if c in "pP":
            raise self._fail(r"Unicode classes (\p{…}) are not supported; list the characters in [...]")
        ranges = _PERL_CLASSES.get(c.lower())
        if ranges is None:
            return None
        self.pos += 1
        return ranges if c.islower() else _complement(ranges)

    def _escaped_char(self) -> int:
        """The character of a single-character escape at pos (just after the backslash)."""
        src = self.src
        if self.pos >= len(src):
            raise self._fail("trailing backslash")
        c = src[self.pos]
        self.pos += 1
        if c in _OCTAL and (c == "0" or src[self.pos : self.pos + 1] in tuple(_OCTAL)):
            digits = c
            while len(digits) < 3 and self.pos < len(src) and src[self.pos] in _OCTAL:
                digits += src[self.pos]
                self.pos += 1
            return int(digits, 8)
        if c == "x":
            braced = re.compile(r"\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2})").match(src, self.pos)
            if braced is None or int(braced.group(1) or braced.group(2), 16) > _MAX_RUNE:
                raise self._fail(r"invalid \x escape; write \x41 or \x{1F600}")
            self.pos = braced.end()
            return int(braced.group(1) or braced.group(2), 16)
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c]
        if ord(c) < 0x80 and not c.isalnum():
            return ord(c)
        raise self._fail(f"invalid escape \\{c}")

    def _parse_class(self) -> str:
        src = self.src
        self.pos += 1  # the [
        negated = src.startswith("^", self.pos)
        self.pos += negated
        ranges: _Ranges = []
        first = True
        while first or src[self.pos : self.pos + 1] != "]":
            if self.pos >= len(src):
                raise self._fail("missing closing ] of a character class")
            first = False
            if src.startswith("[:", self.pos):
                end = src.find(":]", self.pos + 2)
                if end >= 0:
                    name = src[self.pos + 2 : end]
                    posix = _POSIX_CLASSES.get(name.removeprefix("^"))
                    if posix is None:
                        raise self._fail(f"invalid character class [:{name}:]")
                    ranges += _complement(posix) if name.startswith("^") else posix
                    self.pos = end + 2
                    continue
            if src[self.pos] == "\\":
                self.pos += 1
                perl = self._perl_class() if self.pos < len(src) else None
                if perl is not None:
                    ranges += perl
                    continue
                self.pos -= 1
            low = self._class_char()
            high = low
            if src[self.pos : self.pos + 1] == "-" and src[self.pos + 1 : self.pos + 2] not in ("", "]"):
                self.pos += 1
                high = self._class_char()
                if high < low:
                    raise self._fail(f"invalid character class range {chr(low)}-{chr(high)}")
            ranges.append((low, high))
        self.pos += 1
        return _class_source(ranges, negated)

    def _class_char(self) -> int:
        if self.pos >= len(self.src):
            raise self._fail("missing closing ] of a character class")
        c = self.src[self.pos]
        self.pos += 1
        return self._escaped_char() if c == "\\" else ord(c)
