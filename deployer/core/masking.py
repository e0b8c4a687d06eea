"""Secret values that must never be printed, and the one function that hides them.

The config loader registers the values of secret-looking env file keys, the values listed in
services.*.secrets and passwords inside URLs; the engine adapter adds the registry password;
the CLI masks each message, each relayed stderr and each container log line with `mask`
before printing it. Short values (under 4 characters) are not registered: masking them
would garble ordinary text, and they are not secrets worth the name.
"""

from __future__ import annotations

import re

_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
MIN_LENGTH = 4
HIDDEN = "*****"


def register(*values: str) -> None:
    global _pattern
    new = {v for v in values if v and len(v) >= MIN_LENGTH}
    if new - _values:
        _values.update(new)
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def mask(text: str) -> str:
    if not text or _pattern is None:
        return text
    return _pattern.sub(HIDDEN, text)


def forget() -> None:
    """Tests only."""
    global _pattern
    _values.clear()
    _pattern = None
