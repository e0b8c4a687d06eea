"""The retention policy (pure): which dumps to keep, which may go.

Grandfather-father-son over the usable dumps of ONE database (the caller passes only
those: a dump of another database, a damaged dump and a dump being written are never
candidates): keep the newest `keep_last`, then the newest dump of each of the
`keep_daily` most recent days that have one, likewise for ISO weeks and months (UTC).
One rule overrides everything: the newest verified dump always stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Policy:
    """backup.keep_*: the config's model (deployer/config/model.py, Backup) holds their defaults."""

    keep_last: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int


@dataclass(frozen=True)
class Candidate:
    """A dump that retention may keep or delete."""

    name: str
    created: datetime
    verified: bool


@dataclass(frozen=True)
class Decision:
    """What retention keeps (and why) and deletes."""

    keep: dict[str, str]  # name -> why
    delete: tuple[str, ...]  # oldest first
    newest_verified: str | None


def _day(t: datetime) -> tuple:
    return (t.year, t.month, t.day)


def _week(t: datetime) -> tuple:
    iso = t.isocalendar()
    return (iso[0], iso[1])


def _month(t: datetime) -> tuple:
    return (t.year, t.month)


def _newest_per_bucket(dumps: list[Candidate], bucket: Callable[[datetime], tuple], count: int) -> list[str]:
    """Newest dump of each of the `count` most recent buckets (dumps sorted newest first)."""
    chosen: list[str] = []
    seen: set[tuple] = set()
    for d in dumps:
        key = bucket(d.created)
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.add(key)
        chosen.append(d.name)
    return chosen


def decide(candidates: Iterable[Candidate], policy: Policy) -> Decision:
    dumps = sorted(candidates, key=lambda d: (d.created, d.name), reverse=True)
    keep: dict[str, str] = {}
    for d in dumps[: policy.keep_last]:
        keep.setdefault(d.name, "last")
    for why, bucket, count in (
        ("daily", _day, policy.keep_daily),
        ("weekly", _week, policy.keep_weekly),
        ("monthly", _month, policy.keep_monthly),
    ):
        for name in _newest_per_bucket(dumps, bucket, count):
            keep.setdefault(name, why)
    newest_verified = next((d for d in dumps if d.verified), None)
    if newest_verified:
        keep[newest_verified.name] = "newest verified"
    delete = tuple(d.name for d in reversed(dumps) if d.name not in keep)
    return Decision(keep=keep, delete=delete, newest_verified=newest_verified.name if newest_verified else None)
