"""One-off containers (a migration, a scratch database, a site check): their labels, and what
the next command does with one that a killed command left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.core import names, oneoffs
from deployer.core.steps import RELEASE


def one(kind: str = oneoffs.MIGRATE, *, running: bool = True, age: float = 10, timeout: float = 60):
    return oneoffs.OneOff("shop-migrate-1a2b3c4d-backend", kind, running, age, timeout, "release v2 by ci@runner pid 7")


def test_a_one_off_says_whose_it_is_what_it_is_and_how_long_it_may_run():
    labels = oneoffs.labels(
        "shop", "d1", oneoffs.MIGRATE, by="release v2 by ci@runner pid 7", timeout=600, **{names.LABEL_RELEASE: "1a2b"}
    )
    assert labels == {
        "deployer.project": "shop",
        "deployer.deployment": "d1",
        "deployer.role": "oneoff",
        "deployer.kind": "migrate",
        "deployer.by": "release v2 by ci@runner pid 7",
        "deployer.timeout": "600",
        "deployer.release": "1a2b",
    }


@pytest.mark.parametrize(
    ("found", "wait_for", "stop_all", "action"),
    [
        (one(running=False), ("migrate",), False, "remove"),  # it ended: nobody needs it
        (one(age=61), ("migrate",), False, "stop"),  # past the time its own command gave it
        (one(), ("migrate",), False, "wait"),  # a migration still within its time
        (one(), (), False, "leave"),  # an `up`: a running migration does not get in its way
        (one(oneoffs.SCRATCH), ("migrate",), False, "leave"),  # a restore check that may still run
        (one(oneoffs.SCRATCH), ("migrate",), True, "stop"),  # `down`: everything goes
        (one(), ("migrate",), True, "wait"),  # `down` waits for a migration too
    ],
)
def test_what_the_next_command_does_with_a_one_off_it_finds(found, wait_for, stop_all, action):
    assert oneoffs.decide(found, wait_for=wait_for, stop_all=stop_all) == action


def test_a_one_off_is_timed_by_the_engines_clock_and_legacy_labels_still_count():
    started = "2026-01-02T03:04:05.123456789Z"
    now = oneoffs.epoch(started) + 42.5
    legacy = {"deployer.project": "shop", "deployer.role": "migrate", "deployer.service": "backend"}
    found = oneoffs.parse("old", legacy, running=True, started_at=started, now=now, default_timeout=600)
    assert (found.kind, found.timeout, round(found.age, 1), round(found.left, 1)) == ("migrate", 600, 42.5, 557.5)
    ended = oneoffs.parse("old", legacy, running=False, started_at=started, now=now, default_timeout=600)
    assert ended.age == 0 and oneoffs.decide(ended, wait_for=("migrate",)) == "remove"
    assert oneoffs.epoch("0001-01-01T00:00:00Z") == 0 and oneoffs.epoch("") == 0


def test_a_one_off_is_named_with_what_it_runs_and_who_started_it():
    labels = oneoffs.labels(
        "shop", "", oneoffs.MIGRATE, by="release v2 by ci@runner pid 7", timeout=60,
        **{names.LABEL_SERVICE: "backend", names.LABEL_RELEASE: "1a2b3c4d", names.LABEL_VERSION: "v2"},
    )  # fmt: skip
    found = oneoffs.parse(
        "shop-migrate-1a2b3c4d-backend", labels, running=True, started_at="", now=0, default_timeout=1
    )
    assert found.describe() == (
        "shop-migrate-1a2b3c4d-backend (the migration of backend of release 1a2b3c4d (v2), "
        "started by release v2 by ci@runner pid 7)"
    )


def test_the_fault_table_covers_every_step_of_a_release():
    """docs/reliability.md: SIGKILL at every step (tests/integration/test_faults.py prints it)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = text.split("## Fault injection", 1)[1].split("\n## ", 1)[0]
    killed = {
        line.split("|")[1].strip().split(",")[0].split(" (")[0] for line in table.splitlines() if line.startswith("| ")
    }
    assert {step.value for step in RELEASE} <= killed, sorted({s.value for s in RELEASE} - killed)
