"""How old the images of the edge, the database and the backup agent are. An image holds the
packages of the day it was built (nginx, OpenSSL, PostgreSQL): the fixes of every later day
reach it only by a new build (`deployer up --refresh-images`, docs/security.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deployer.core import names

MAX_AGE_DAYS = 30  # `deployer status` warns about an image built longer ago
PARTS = {"edge": "edge", "db": "database", "backup": "backup agent"}


def built(created: str) -> datetime | None:
    """An image's creation time as the engine gives it (RFC 3339, nanoseconds, Z)."""
    text = (created or "").strip()
    if not text:
        return None
    head, _, _ = text.replace("Z", "").partition(".")
    try:
        return datetime.strptime(head[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def entry(ref: str, created: str, labels: dict[str, str], now: datetime) -> dict[str, Any]:
    """What status says of one image: its reference, build date, age in days, base, and
    whether it is older than MAX_AGE_DAYS."""
    when = built(created)
    days = (now - when).days if when else None
    return {
        "image": ref,
        "built": when.strftime("%Y-%m-%d %H:%M") if when else None,
        "age_days": days,
        "base": labels.get(names.LABEL_BASE),
        "old": days is not None and days > MAX_AGE_DAYS,
    }


def warning(images: dict[str, dict[str, Any]]) -> str | None:
    """One line naming every image older than MAX_AGE_DAYS, or None."""
    old = [f"{PARTS.get(part, part)} ({i['age_days']} days)" for part, i in images.items() if i.get("old")]
    if not old:
        return None
    return (
        f"built more than {MAX_AGE_DAYS} days ago, so without the security fixes since: {', '.join(old)}: "
        "run `deployer up --refresh-images` (docs/security.md)"
    )
