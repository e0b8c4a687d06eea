"""The undo of a release that did not complete, decided from the route state the edge reports."""

from __future__ import annotations

import pytest

from deployer.core.state import EdgeState, Pending, Record
from deployer.core.undo import LIVE, REMOVED, Undo, decide

OLD = Record("green", "0ld0ld00", "v1")  # green's release before: the old standby
NEW = Record("green", "fe11ed00", "v2")  # the release being undone
LIVE_BLUE = Record("blue", "b1b1b1b1", "v1")


def state(live: str, green: Record | None, pending: Pending | None = None) -> EdgeState:
    return EdgeState(live, {"blue": LIVE_BLUE, "green": green}, pending=pending)


MINE = Pending("green", NEW.release, "v2", OLD)
OTHER = Pending("green", "0ther000", "v3", OLD)

CASES = {
    # the switch had swapped when the cancel landed: the release stays, its mark goes
    "live, its pending mark still there": (state("green", NEW, MINE), OLD, Undo(LIVE, clear_pending=True)),
    "live, the switch cleared the mark": (state("green", NEW), OLD, Undo(LIVE)),
    "live, a mark of another release": (state("green", NEW, OTHER), OLD, Undo(LIVE)),
    # the colour's route state names the release (it failed in health, smoke or switch)
    "named, not live": (state("blue", NEW, MINE), OLD, Undo(REMOVED, True, OLD, True, True)),
    "named, the colour had no release": (state("blue", NEW, MINE), None, Undo(REMOVED, True, None, True, True)),
    "named, nothing live yet": (state("", NEW, MINE), None, Undo(REMOVED, True, None, True, True)),
    "named, the switch put the old live colour back": (state("blue", NEW), OLD, Undo(REMOVED, True, OLD, True, True)),
    # it failed before the record named it (start): the standby's record is left as it is
    "still the old standby's record": (state("blue", OLD, MINE), OLD, Undo(REMOVED, remove=True, clear_pending=True)),
    "no record at all": (state("blue", None, MINE), None, Undo(REMOVED, remove=True, clear_pending=True)),
    "no pending mark either": (state("blue", OLD), OLD, Undo(REMOVED, remove=True, clear_pending=True)),
    # the colour is live with an older release: this one never served
    "its colour live with the old release": (state("green", OLD), OLD, Undo(REMOVED, remove=True, clear_pending=True)),
}


@pytest.mark.parametrize("edge, standby, expected", CASES.values(), ids=CASES.keys())
def test_the_undo_follows_the_route_state(edge: EdgeState, standby: Record | None, expected: Undo):
    assert decide(edge, "green", NEW.release, standby) == expected


def test_a_live_release_is_never_removed_nor_its_colour_rewritten():
    for edge, standby, _ in CASES.values():
        undo = decide(edge, "green", NEW.release, standby)
        if undo.outcome == LIVE:
            assert not undo.remove and not undo.put_back
        else:
            assert undo.remove and undo.clear_pending
