"""Kubernetes label selectors, as ``kubectl get -l`` takes them.

``k=v`` / ``k==v`` (equal), ``k!=v`` (not equal, or no such label), ``k`` (has the label), ``!k`` (has
not), ``k in (a,b)``, ``k notin (a,b)``; requirements are joined by commas and must all hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tibackup.errors import UsageError

_KEY = re.compile(r"([a-z0-9A-Z]([-a-z0-9A-Z.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?")
_VALUE = re.compile(r"([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?")
_SET = re.compile(r"^(\S+)\s+(in|notin)\s+\(([^()]*)\)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse a selector; a malformed one raises UsageError saying which part is wrong."""
    requirements = [_requirement(part.strip(), text) for part in _split(text) if part.strip()]
    return Selector(tuple(requirements))


def _split(text: str) -> list[str]:
    """Split on the commas that are not inside ``( … )``."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise UsageError(f"label selector {text!r}: unbalanced ')'")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise UsageError(f"label selector {text!r}: unbalanced '('")
    parts.append(current)
    return parts


def _requirement(part: str, whole: str) -> Requirement:
    found = _SET.match(part)
    if found:
        key, op, values = found.group(1), found.group(2), found.group(3)
        items = tuple(v.strip() for v in values.split(",") if v.strip())
        if not items:
            raise UsageError(f"label selector {whole!r}: {op} needs at least one value in ( )")
        for value in items:
            _check_value(value, whole)
        return Requirement(_check_key(key, whole), op, items)
    for op in ("!=", "==", "="):
        if op in part:
            key, _, value = part.partition(op)
            key, value = key.strip(), value.strip()
            _check_value(value, whole)
            return Requirement(_check_key(key, whole), "!=" if op == "!=" else "=", (value,))
    if part.startswith("!"):
        return Requirement(_check_key(part[1:].strip(), whole), "!")
    return Requirement(_check_key(part, whole), "exists")


def _check_key(key: str, whole: str) -> str:
    if not _KEY.fullmatch(key):
        raise UsageError(
            f"label selector {whole!r}: {key!r} is not a valid label key; "
            "write key=value, key!=value, key, !key, 'key in (a,b)' or 'key notin (a,b)'"
        )
    return key


def _check_value(value: str, whole: str) -> None:
    if len(value) > 63 or not _VALUE.fullmatch(value):
        raise UsageError(f"label selector {whole!r}: {value!r} is not a valid label value")
