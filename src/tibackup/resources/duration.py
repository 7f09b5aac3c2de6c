"""Go-style durations (``72h``, ``30m``, ``1h30m``, ``90s``, ``1.5h``), as TiDB Operator parses them.

``tikvGCLifeTime`` and ``maxReservedTime`` are Go ``time.Duration`` strings; TiDB's
``tikv_gc_life_time`` variable and the Backup's ``timeTaken`` use the same notation.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from tibackup.errors import InvalidSpecError

_UNIT_SECONDS: dict[str, Decimal] = {
    "ns": Decimal("0.000000001"),
    "us": Decimal("0.000001"),
    "µs": Decimal("0.000001"),  # both micro signs are valid in Go
    "μs": Decimal("0.000001"),
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_EXAMPLES = "use a Go duration such as 72h, 30m, 1h30m or 90s"


def parse_duration(text: str, field: str = "duration") -> timedelta:
    """Parse a Go duration; errors name ``field`` (e.g. ``spec.tikvGCLifeTime``)."""
    if not isinstance(text, str):
        raise InvalidSpecError(field, f"{text!r} is not a duration; {_EXAMPLES}")
    raw = text.strip()
    body = raw[1:] if raw[:1] in "+-" else raw
    if body == "0":
        return timedelta(0)
    if not body:
        raise InvalidSpecError(field, f"empty duration; {_EXAMPLES}")
    total = Decimal(0)
    pos = 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise InvalidSpecError(
                field,
                f"{text!r} is not a duration (a unit ns, us, ms, s, m or h must follow each number); "
                f"{_EXAMPLES}",
            )
        total += Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if raw.startswith("-"):
        total = -total
    return timedelta(seconds=float(total))


def parse_positive_duration(text: str, field: str) -> timedelta:
    """Parse a Go duration that must be longer than zero."""
    value = parse_duration(text, field)
    if value <= timedelta(0):
        raise InvalidSpecError(field, f"{text!r} must be longer than zero; {_EXAMPLES}")
    return value


def format_duration(value: timedelta) -> str:
    """Format like Go's ``Duration.String()``: ``1h2m3s``, ``2m0s``, ``1.5s``, ``250ms``, ``0s``."""
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros == 0:
        return "0s"
    if micros < 1_000:
        return f"{sign}{micros}µs"
    if micros < 1_000_000:
        return f"{sign}{_trim(Decimal(micros) / 1000)}ms"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = _trim(Decimal(rest) / 1_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _trim(number: Decimal) -> str:
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
