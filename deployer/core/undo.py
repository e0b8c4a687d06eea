"""What undoing a release that did not complete must do, decided from the route state the
edge reports after the failure (never from what the process believes happened).

    the release serves live traffic  "live": a cancel landed after the switch's swap; nothing
                                     is removed, and its pending mark goes if it is still there
    the colour's route state names   "removed": the colour's route state goes back to the old
    the release                      standby, the release is removed, the pending mark goes
    anything else                    "removed": the release is removed (the route state never
                                     named it, or names another release), the mark goes

flows/cleanup.py `settle` reads the state, asks `decide`, and does what it says.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.core.state import EdgeState, Record

LIVE, REMOVED = "live", "removed"


@dataclass(frozen=True)
class Undo:
    """What the undo of an unfinished release does."""

    outcome: str  # LIVE or REMOVED
    put_back: bool = False  # write the colour's route state back to `standby`
    standby: Record | None = None  # what it gets back (None: the colour had no release)
    remove: bool = False  # remove the release's containers or stack
    clear_pending: bool = False  # remove the pending mark


def decide(state: EdgeState, colour: str, release_id: str, standby: Record | None) -> Undo:
    """The undo of the release `release_id` of `colour`, whose colour held `standby` before it."""
    if state.serves(colour, release_id):
        mine = state.pending is not None and state.pending.release == release_id
        return Undo(LIVE, clear_pending=mine)
    current = state.record(colour)
    named = current is not None and current.release == release_id
    return Undo(REMOVED, put_back=named, standby=standby if named else None, remove=True, clear_pending=True)
