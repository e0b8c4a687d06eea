"""When the next backup is due (pure, croniter), and when a missed one counts as missed.

The backup service's health is a deadline: the time by which a newer successful dump must
exist, derived from the newest good dump (the host's truth) or from the service's first
start. Restarting the service does not move it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def next_run(expr: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(expr, after).get_next(datetime)


def problem(expr: str) -> str | None:
    """Why a cron expression cannot serve as a schedule (invalid, or never fires), or None."""
    from croniter import CroniterBadDateError, croniter

    if not croniter.is_valid(expr):
        return f"not a valid cron expression: {expr!r}"
    try:
        croniter(expr, datetime(2000, 1, 1, tzinfo=UTC), max_years_between_matches=8).get_next(datetime)
    except CroniterBadDateError:
        return f"{expr!r} never fires (no date matches it)"
    return None


def period(expr: str, at: datetime) -> timedelta:
    first = next_run(expr, at)
    return next_run(expr, first) - first


def grace(expr: str, at: datetime) -> timedelta:
    """Time a dump may take before it counts as missed: half a period, between 15 s and 1 h."""
    return min(max(period(expr, at) / 2, timedelta(seconds=15)), timedelta(hours=1))


def deadline(expr: str, last_success: datetime | None, started: datetime) -> datetime:
    reference = max(last_success, started) if last_success else started
    return next_run(expr, reference) + grace(expr, reference)


def overdue(expr: str, last_success: datetime | None, started: datetime, now: datetime) -> bool:
    return now > deadline(expr, last_success, started)


def drill_wait(expr: str, last: datetime | None, started: datetime, now: datetime) -> float:
    """Seconds until a restore drill is due (0: due now): the first time of its schedule after
    the last drill, or after the schedule first started when none ran yet."""
    return max(0.0, (next_run(expr, max(last, started) if last else started) - now).total_seconds())
