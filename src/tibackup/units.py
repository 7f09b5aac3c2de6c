"""Human sizes and durations for logs, progress and tables."""

from __future__ import annotations


def human_size(n: float, *, si: bool = True) -> str:
    """1300000000 → '1.3 GB' (SI, as TiDB Operator's backupSizeReadable); si=False → '1.2 GiB'."""
    base = 1000.0 if si else 1024.0
    units = ["B", "kB", "MB", "GB", "TB", "PB"] if si else ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    value = float(n)
    for unit in units:
        if abs(value) < base or unit == units[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= base
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """75 → '1m15s'; 0.4 → '0.4s'; 7322 → '2h2m2s'."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
