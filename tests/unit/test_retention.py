"""Retention over a fake clock: months of dumps, edge cases, the newest verified dump always survives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from deployer.core.retention import Candidate, Policy, decide

START = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)


def nightly(days: int, verified=lambda i: True) -> list[Candidate]:
    return [Candidate(f"d{i:04d}", START + timedelta(days=i), verified(i)) for i in range(days)]


def test_months_of_nightly_dumps_keep_last_daily_weekly_monthly():
    dumps = nightly(200)
    decision = decide(dumps, Policy(keep_last=3, keep_daily=7, keep_weekly=4, keep_monthly=6))
    kept = sorted(decision.keep)
    assert kept[-7:] == [f"d{i:04d}" for i in range(193, 200)]  # last 3 + 7 daily overlap
    newest = dumps[-1].created
    weekly = {(d.created.isocalendar()[0], d.created.isocalendar()[1]) for d in dumps if d.name in decision.keep}
    assert len(weekly) >= 4
    months = {(d.created.year, d.created.month) for d in dumps if d.name in decision.keep}
    assert len(months) == 6 and (newest.year, newest.month) in months
    assert len(decision.keep) + len(decision.delete) == 200
    assert set(decision.keep).isdisjoint(decision.delete)
    # monthly keeps the newest dump of each month
    for y, m in months:
        in_month = [d for d in dumps if (d.created.year, d.created.month) == (y, m)]
        assert in_month[-1].name in decision.keep


def test_deletes_oldest_first_and_is_stable_when_applied_again():
    dumps = nightly(60)
    first = decide(dumps, Policy(2, 3, 2, 2))
    assert list(first.delete) == sorted(first.delete)
    remaining = [d for d in dumps if d.name in first.keep]
    assert decide(remaining, Policy(2, 3, 2, 2)).delete == ()


def test_one_dump_is_kept():
    assert decide(nightly(1), Policy(1, 0, 0, 0)).delete == ()
    assert decide(nightly(1, verified=lambda i: False), Policy(1, 0, 0, 0)).delete == ()


def test_no_dumps():
    assert decide([], Policy(7, 7, 4, 6)).delete == ()


def test_all_unverified_follow_the_policy():
    decision = decide(nightly(30, verified=lambda i: False), Policy(2, 0, 0, 0))
    assert sorted(decision.keep) == ["d0028", "d0029"] and len(decision.delete) == 28


def test_newest_verified_survives_even_outside_every_bucket():
    dumps = nightly(40, verified=lambda i: i == 5)
    decision = decide(dumps, Policy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0))
    assert decision.keep["d0005"] == "newest verified"
    assert set(decision.keep) == {"d0039", "d0005"}


def test_the_newest_verified_is_named_for_the_re_check():
    dumps = nightly(10, verified=lambda i: i in (2, 6))
    decision = decide(dumps, Policy(1, 0, 0, 0))
    assert decision.newest_verified == "d0006" and set(decision.keep) == {"d0009", "d0006"}
    assert decide(nightly(3, verified=lambda i: False), Policy(1, 0, 0, 0)).newest_verified is None


def test_several_dumps_a_day_keep_the_newest_of_each_day():
    dumps = [Candidate(f"h{i:03d}", START + timedelta(hours=6 * i), True) for i in range(40)]
    decision = decide(dumps, Policy(keep_last=1, keep_daily=5, keep_weekly=0, keep_monthly=0))
    days = sorted({d.created.date() for d in dumps})[-5:]
    for day in days:
        newest_of_day = [d for d in dumps if d.created.date() == day][-1]
        assert newest_of_day.name in decision.keep
    assert len(decision.keep) == 5


def test_random_histories_always_keep_the_newest_verified_and_newest_dump():
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 80)
        dumps = [
            Candidate(f"r{i:03d}", START + timedelta(hours=rng.randint(0, 24 * 200)), rng.random() < 0.3)
            for i in range(n)
        ]
        policy = Policy(rng.randint(1, 5), rng.randint(0, 7), rng.randint(0, 4), rng.randint(0, 6))
        decision = decide(dumps, policy)
        ordered = sorted(dumps, key=lambda d: (d.created, d.name))
        verified = [d for d in ordered if d.verified]
        if verified:
            assert verified[-1].name in decision.keep and decision.newest_verified == verified[-1].name
        assert ordered[-1].name in decision.keep
        assert set(decision.keep).isdisjoint(decision.delete)
        assert set(decision.keep) | set(decision.delete) == {d.name for d in dumps}
        assert len(decision.keep) >= min(policy.keep_last, len(dumps))
