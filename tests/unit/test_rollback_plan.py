"""`deployer rollback [VERSION]` decides from the route state alone what it does: the pure
plan, for every state a team can be in."""

from __future__ import annotations

import pytest

from deployer.core.state import EdgeState, Record
from deployer.errors import SwitchError
from deployer.flows.back import LIVE, RELEASE, SWITCH, plan


def state(live: str, **versions: str) -> EdgeState:
    records = {c: Record(c, f"r{c[0]}00001", v) for c, v in versions.items()}
    return EdgeState(live=live, records=records)


def test_without_a_version_the_standby_goes_live_whatever_its_colour():
    assert plan(state("blue", blue="v2", green="v1"), None).colour == "green"
    assert plan(state("green", blue="v1", green="v2"), None).colour == "blue"
    chosen = plan(state("green", blue="v1", green="v2"), None)
    assert (chosen.action, chosen.version) == (SWITCH, "v1")


def test_without_a_standby_or_a_live_colour_it_refuses_and_says_what_to_do():
    with pytest.raises(SwitchError, match="no warm standby.*deployer rollback VERSION"):
        plan(state("blue", blue="v1"), None)
    with pytest.raises(SwitchError, match="nothing is live yet"):
        plan(state("", blue="v1"), None)


def test_a_version_goes_live_by_a_switch_when_a_colour_runs_it_else_by_a_release():
    s = state("blue", blue="v3", green="v2")
    assert (plan(s, "v2").action, plan(s, "v2").colour) == (SWITCH, "green")
    assert (plan(s, "v3").action, plan(s, "v3").colour) == (LIVE, "blue")
    assert (plan(s, "v1").action, plan(s, "v1").version) == (RELEASE, "v1")
    assert "already live" in plan(s, "v3").describe(s)
    assert "no build" in plan(s, "v1").describe(s) and "blue (v3) is live" in plan(s, "v1").describe(s)
    assert plan(state(""), "v1").action == RELEASE  # nothing released yet: a first release
