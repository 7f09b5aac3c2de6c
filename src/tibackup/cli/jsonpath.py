"""kubectl's JSONPath templates (``-o jsonpath=…``, ``custom-columns``, ``--sort-by``), on plain JSON data.

The subset of k8s.io/client-go/util/jsonpath that scripts use: text outside ``{}`` printed as is; inside,
``.field`` / ``['field']``, ``..field`` (recursive), ``*`` and ``[*]``, ``[n]`` (negative from the end),
``[start:end]``, ``[?(@.a.b == "x")]`` filters (``== != < <= > >=``, or ``@.a`` alone for "has a"),
``@`` and ``$``, ``{range …}…{end}`` and quoted literals such as ``{"\\n"}``. As kubectl does with its
default ``--allow-missing-template-keys``, a missing field prints nothing. Several results of one
expression are printed space-separated; strings as they are, maps and lists as compact JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tibackup.errors import UsageError

_MISSING = object()


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Path:
    steps: tuple[tuple[str, Any], ...]  # (kind, argument): field, recurse, index, slice, all, filter


@dataclass(frozen=True)
class _Range:
    path: _Path
    body: tuple[_Text | _Path | _Range, ...]


Node = _Text | _Path | _Range
_FIELD = re.compile(r"[^.\[\]{}\s=!<>()@,'\"]+")
_FILTER = re.compile(r"\?\(\s*(@[^=!<>]*?)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)")


class Template:
    """A parsed template; ``render(data)`` is the text kubectl prints for ``data``."""

    def __init__(self, source: str) -> None:
        self.source = source
        nodes, rest = _parse_nodes(source, 0, inside_range=False)
        if rest != len(source):  # pragma: no cover - _parse_nodes consumes everything or raises
            raise _error(source, "unexpected text")
        self.nodes = nodes

    def render(self, data: Any) -> str:
        return "".join(_render(self.nodes, data, data))

    def values(self, data: Any) -> list[Any]:
        """The results of a template that is one expression (custom-columns, --sort-by)."""
        found: list[Any] = []
        for node in self.nodes:
            if isinstance(node, _Path):
                found.extend(_evaluate(node, data, data))
        return found


def relaxed(expression: str) -> Template:
    """kubectl's relaxed form for custom-columns and --sort-by: ``.a.b``, ``a.b`` or ``{.a.b}``."""
    text = expression.strip()
    if not text.startswith("{"):
        text = "{" + (text if text.startswith((".", "[", "$", "@")) else "." + text) + "}"
    return Template(text)


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # as Go's
    return str(value)


def _error(source: str, why: str) -> UsageError:
    return UsageError(f"error parsing jsonpath {source}, {why}; see docs/embedded.md for the syntax")


def _parse_nodes(source: str, pos: int, inside_range: bool) -> tuple[tuple[Node, ...], int]:
    nodes: list[Node] = []
    while pos < len(source):
        start = source.find("{", pos)
        if start < 0:
            nodes.append(_Text(source[pos:]))
            pos = len(source)
            break
        if start > pos:
            nodes.append(_Text(source[pos:start]))
        end = _closing(source, start)
        action = source[start + 1 : end].strip()
        pos = end + 1
        if action == "end":
            if not inside_range:
                raise _error(source, "{end} without {range}")
            return tuple(nodes), pos
        if action.startswith("range ") or action == "range":
            body, pos = _parse_nodes(source, pos, inside_range=True)
            nodes.append(_Range(_parse_path(source, action[5:].strip()), body))
            continue
        if action[:1] in ('"', "'"):
            nodes.append(_Text(_literal(source, action)))
            continue
        nodes.append(_parse_path(source, action))
    if inside_range:
        raise _error(source, "{range} without {end}")
    return tuple(nodes), pos


def _closing(source: str, start: int) -> int:
    quote = ""
    for index in range(start + 1, len(source)):
        char = source[index]
        if quote:
            if char == "\\":
                continue
            if char == quote and source[index - 1] != "\\":
                quote = ""
        elif char in ('"', "'"):
            quote = char
        elif char == "}":
            return index
    raise _error(source, "unclosed action")


def _literal(source: str, text: str) -> str:
    if len(text) < 2 or text[-1] != text[0]:
        raise _error(source, f"unterminated quoted string {text}")
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace('"', '\\"')
    try:
        value = json.loads(f'"{body}"', strict=False)
    except json.JSONDecodeError:
        raise _error(source, f"bad quoted string {text}") from None
    return str(value)


def _parse_path(source: str, text: str) -> _Path:
    steps: list[tuple[str, Any]] = []
    pos = 0
    if text[:1] in ("$", "@"):
        pos = 1
    while pos < len(text):
        if text.startswith("..", pos):
            match = _FIELD.match(text, pos + 2)
            if not match:
                raise _error(source, f"a field name must follow '..' in {text}")
            steps.append(("recurse", match.group()))
            pos = match.end()
        elif text[pos] == ".":
            match = _FIELD.match(text, pos + 1)
            if not match:
                if pos + 1 == len(text):  # "{.}": the current object
                    break
                raise _error(source, f"bad field at {text[pos:]!r}")
            steps.append(("all", None) if match.group() == "*" else ("field", match.group()))
            pos = match.end()
        elif text[pos] == "[":
            end = _bracket_end(source, text, pos)
            steps.append(_bracket(source, text[pos + 1 : end].strip()))
            pos = end + 1
        else:
            match = _FIELD.match(text, pos)
            if pos == 0 and match:  # "metadata.name" without the leading dot
                steps.append(("field", match.group()))
                pos = match.end()
                continue
            raise _error(source, f"unrecognized character in action: {text[pos]!r}")
    return _Path(tuple(steps))


def _bracket_end(source: str, text: str, pos: int) -> int:
    depth = 0
    quote = ""
    for index in range(pos, len(text)):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in ('"', "'"):
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
    raise _error(source, f"unterminated [ in {text}")


def _bracket(source: str, inner: str) -> tuple[str, Any]:
    if inner == "*":
        return ("all", None)
    if inner[:1] in ('"', "'"):
        return ("field", _literal(source, inner))
    if inner.startswith("?"):
        match = _FILTER.fullmatch(inner)
        if not match:
            raise _error(source, f"bad filter [{inner}]")
        left, operator, right = match.groups()
        right_value = _operand(source, right) if right is not None else None
        return ("filter", (_parse_path(source, left), operator, right_value))
    if ":" in inner:
        parts = [p.strip() for p in inner.split(":")]
        try:
            numbers = [int(p) if p else None for p in parts]
        except ValueError:
            raise _error(source, f"bad slice [{inner}]") from None
        return ("slice", slice(*numbers[:3]))
    try:
        return ("index", int(inner))
    except ValueError:
        raise _error(source, f"bad index [{inner}]") from None


def _operand(source: str, text: str) -> Any:
    if text[:1] in ('"', "'"):
        return _literal(source, text)
    if text.startswith("@"):
        return _parse_path(source, text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise _error(source, f"bad value {text} in a filter") from None


def _render(nodes: tuple[Node, ...], current: Any, root: Any) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, _Text):
            yield node.text
        elif isinstance(node, _Path):
            yield " ".join(format_value(v) for v in _evaluate(node, current, root))
        else:
            for item in _evaluate(node.path, current, root):
                yield from _render(node.body, item, root)


def _evaluate(path: _Path, current: Any, root: Any) -> list[Any]:
    values = [current]
    for kind, argument in path.steps:
        values = [found for value in values for found in _step(kind, argument, value, root)]
    return [v for v in values if v is not _MISSING]


def _step(kind: str, argument: Any, value: Any, root: Any) -> list[Any]:
    if kind == "field":
        return [value[argument]] if isinstance(value, dict) and argument in value else []
    if kind == "all":
        if isinstance(value, dict):
            return list(value.values())
        return list(value) if isinstance(value, list) else []
    if kind == "index":
        if isinstance(value, list) and -len(value) <= argument < len(value):
            return [value[argument]]
        return []
    if kind == "slice":
        return list(value[argument]) if isinstance(value, list) else []
    if kind == "recurse":
        return list(_recurse(value, argument))
    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
    left, operator, right = argument
    return [item for item in items if _matches(item, left, operator, right, root)]


def _recurse(value: Any, name: str) -> Iterator[Any]:
    if isinstance(value, dict):
        if name in value:
            yield value[name]
        for child in value.values():
            yield from _recurse(child, name)
    elif isinstance(value, list):
        for child in value:
            yield from _recurse(child, name)


def _matches(item: Any, left: _Path, operator: str | None, right: Any, root: Any) -> bool:
    found = _evaluate(left, item, root)
    if operator is None:
        return bool(found)
    if not found:
        return False
    expected = _evaluate(right, item, root) if isinstance(right, _Path) else [right]
    if not expected:
        return False
    a, b = found[0], expected[0]
    if operator == "==":
        return bool(a == b)
    if operator == "!=":
        return bool(a != b)
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator])
    except TypeError:
        return False
