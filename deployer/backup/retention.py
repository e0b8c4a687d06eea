"""The retention policy (pure): which dumps to keep, which may go.

Grandfather-father-son over the dumps that exist: keep the newest `keep_last`, then the
newest dump of each of the `keep_daily` most recent days that have one, likewise for ISO weeks
and months (UTC). Two rules override everything: the newest verified dump always stays, and a
dump still being written is never a candidate (it is not complete, so it is not in the list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Policy:
    keep_last: int = 7
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6


@dataclass(frozen=True)
class Candidate:
    name: str
    created: datetime
    verified: bool
    writing: bool = False


@dataclass(frozen=True)
class Decision:
    keep: dict[str, str]  # name -> why
    delete: tuple[str, ...]  # oldest first


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
        if len(seen) >= count:
            break
        key = bucket(d.created)
        if key not in seen:
            seen.add(key)
            chosen.append(d.name)
    return chosen


def decide(candidates: Iterable[Candidate], policy: Policy) -> Decision:
    all_dumps = sorted(candidates, key=lambda d: (d.created, d.name), reverse=True)
    keep: dict[str, str] = {}
    for d in all_dumps:
        if d.writing:
            keep[d.name] = "being written"
    complete = [d for d in all_dumps if not d.writing]
    for name in [d.name for d in complete[: policy.keep_last]]:
        keep.setdefault(name, "last")
    for why, bucket, count in (
        ("daily", _day, policy.keep_daily),
        ("weekly", _week, policy.keep_weekly),
        ("monthly", _month, policy.keep_monthly),
    ):
        for name in _newest_per_bucket(complete, bucket, count):
            keep.setdefault(name, why)
    newest_verified = next((d for d in complete if d.verified), None)
    if newest_verified:
        keep[newest_verified.name] = "newest verified"
    delete = tuple(d.name for d in reversed(complete) if d.name not in keep)
    return Decision(keep=keep, delete=delete)
