"""Maintenance mode, as data: the route state file `maintenance` (core/state.py).

While it exists, the public route answers every request with a 503 page and Retry-After
(the edge's Lua, lua/deployer/maintenance.lua, renders it); the preview route, the health
paths and the deployer's own probes (from inside the edge) go on as before, so a release
can be made and checked before reopening. The file is written whole by one atomic rename
and announced on the control socket: no reload.

    since 2026-11-26T10:00:00+0000
    by alice@laptop
    retry-after 300
    message The shop is being upgraded. Back at 11:00.

The message is plain text on one line. Text that could break the page's markup is refused
(bad input), and the Lua escapes what it shows all the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployer.errors import InputError

MAX_MESSAGE = 300
DEFAULT_MESSAGE = "We are making some changes. Please try again in a few minutes."
DEFAULT_RETRY_AFTER = 300
# Letters, digits, spaces and the punctuation of a sentence; nothing markup is made of (<>&"'`).
MESSAGE = re.compile(r"[\w .,:;!?()/@#%+=*\-–—’\[\]]+")


def check_message(message: str) -> str:
    """The message as the page will show it; InputError (exit 2) for text that could break it."""
    text = message.strip()
    if not text:
        raise InputError("--message is empty: leave it out for the default message")
    if len(text) > MAX_MESSAGE:
        raise InputError(f"--message is {len(text)} characters long: at most {MAX_MESSAGE}")
    bad = sorted({c for c in text if not MESSAGE.fullmatch(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        raise InputError(
            f"--message holds characters that could break the page's markup: {shown} "
            "(plain text only: letters, digits, spaces and .,:;!?()/@#%+=*-)"
        )
    return text


def check_retry_after(seconds: int) -> int:
    if not 1 <= seconds <= 86400:
        raise InputError(f"--retry-after must be between 1 and 86400 seconds, not {seconds}")
    return seconds


@dataclass(frozen=True)
class Maintenance:
    """The maintenance page's settings and who turned it on."""

    message: str = DEFAULT_MESSAGE
    retry_after: int = DEFAULT_RETRY_AFTER
    since: str = ""
    by: str = ""

    def render(self) -> str:
        return (
            f"since {self.since or '-'}\nby {self.by or '-'}\nretry-after {int(self.retry_after)}\n"
            f"message {self.message}\n"
        )

    @classmethod
    def parse(cls, text: str | None) -> Maintenance | None:
        """None when maintenance is off (no file)."""
        if text is None:
            return None
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        retry = fields.get("retry-after", "")
        return cls(
            message=fields.get("message", DEFAULT_MESSAGE),
            retry_after=int(retry) if retry.isdigit() else DEFAULT_RETRY_AFTER,
            since="" if fields.get("since") == "-" else fields.get("since", ""),
            by="" if fields.get("by") == "-" else fields.get("by", ""),
        )
