"""The values of Dumpling's flags: sizes, durations, booleans, lists, ``--params`` and escaped CSV texts.

Every dump reads the defaults of ``-s``, ``--tidb-mem-quota-query``, ``--read-timeout`` and the CSV
texts, so those are read without a regular expression (each pattern compiled costs start-up,
docs/dump-performance.md); values with units, fractions or escapes still go through one.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from tibackup.errors import UsageError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(text: str, flag: str) -> int:
    """``256MiB`` → 268435456; ``1GB`` → 10**9; a bare number is bytes (as Dumpling)."""
    if text.isascii() and text.isdigit():  # the defaults: no pattern to compile at start-up
        return int(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE_UNITS:
        raise UsageError(f"{flag}: cannot read size {text!r}: use a number of bytes or e.g. 256MiB, 1GB")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "t", "true", "yes", "on"):
        return True
    if lowered in ("0", "f", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def split_list(values: Sequence[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_params(text: str) -> tuple[tuple[str, str], ...]:
    params: list[tuple[str, str]] = []
    for item in split_list([text]):
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name.strip()):
            raise UsageError(
                f"--params: {item!r} is not name=value; e.g. --params 'sql_mode=,time_zone=+00:00'"
            )
        params.append((name.strip(), value.strip()))
    return tuple(params)


_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def parse_duration_seconds(text: str, flag: str) -> float | None:
    """``30s``, ``15m``, ``1h``, ``1h30m``, ``1.5s`` or a number of seconds; ``0`` (never) → None."""
    plain = text.strip()
    number, unit = (plain[:-1], plain[-1]) if plain[-1:] in _UNIT_SECONDS else (plain, "s")
    if number.isascii() and number.isdigit():  # the default (15m) and one-unit forms: no pattern
        return float(int(number) * _UNIT_SECONDS[unit]) or None
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?|(\d+(?:\.\d+)?)", text.strip())
    if not m or not text.strip():
        raise UsageError(f"{flag}: cannot read duration {text!r}: use e.g. 30s, 15m or 1h")
    if m.group(4) is not None:
        seconds = float(m.group(4))
    else:
        seconds = int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + float(m.group(3) or 0)
    return seconds or None


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}


def unescape(text: str) -> bytes:
    r"""Shells can't type a CR, so ``--csv-line-terminator '\r\n'`` may spell it: \n \r \t \\ are read."""
    if "\\" not in text:  # nothing to read (the defaults but the NULL text)
        return text.encode("utf-8")
    return re.sub(r"\\([nrt\\])", lambda m: _ESCAPES[m.group(1)], text).encode("utf-8")
