"""Durations and sizes as people write them: "90s", "3m", "500ms", "1h"; "2g", "500m".

Pure; the config, the CLI (`release --watch 90s`) and the watch share these."""

from __future__ import annotations

import re

DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kmgt]?)b?", re.IGNORECASE)
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
SIZES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_duration(value: str | int | float) -> float | None:
    """Seconds, or None when it is not a duration. A bare number is seconds; "0" is zero."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    text = value.strip()
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text):
        return float(text)
    m = DURATION.fullmatch(text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_size(value: str) -> int | None:
    """Bytes, or None: "2g", "500m", "1.5G", "1024"."""
    m = SIZE.fullmatch(value.strip())
    return int(float(m.group(1)) * SIZES[m.group(2).lower()]) if m else None


def seconds_text(seconds: float) -> str:
    """90 -> "1m30s", 0.5 -> "500ms"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest}s"
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"


def bytes_text(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
