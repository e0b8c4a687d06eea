"""The undo of `deployer release`, step by step: a failure and a cancel injected at every step
of a release in an in-process deployment (tests/unit/fakes.py), and what each one leaves:
live unchanged, the idle colour's old standby back, the new release gone, no pending mark,
the history's outcome and step, the lock free; after the swap, the new release stays live."""

from __future__ import annotations

import pytest
from fakes import LIVE, STANDBY, FakeEdge, FakeRuntime, NoEngine, World

from deployer.core.state import Pending, Record
from deployer.errors import EngineError
from deployer.flows import release as flow
from deployer.runtime.mode import context

BEFORE_START = ("lock", "preflight", "images", "backup", "migrate")
POINTS = (*BEFORE_START, "start", "health", "smoke", "switch", "swapped", "watch", "retire")
AFTER_SWAP = ("swapped", "watch", "retire")
FAULTS = {"failure": lambda: EngineError("injected failure"), "cancel": KeyboardInterrupt}


@pytest.fixture
def deployment(shop, monkeypatch):
    """(world, ctx, said): a release's collaborators that reach past the edge and the runtime
    are stand-ins that only say when they run (a fault at their point raises there)."""
    world, said = World(), []
    ctx = context(shop, say=said.append)
    ctx.runtime, ctx.edge, ctx.engine = FakeRuntime(world), FakeEdge(world), NoEngine()

    def at(point, value=None):
        return lambda *args, **kwargs: (world.hit(point), value)[1]

    monkeypatch.setattr(flow.artifacts, "check", at("check", []))
    monkeypatch.setattr(flow.artifacts, "ensure", at("images", {"images": {"backend": "sha256:b"}}))
    monkeypatch.setattr(flow.oneoffs, "clear", at("lock"))
    monkeypatch.setattr(flow.agent_call, "refuse_a_running_restore", at("restore"))
    monkeypatch.setattr(flow.dbguard, "preflight", at("preflight"))
    monkeypatch.setattr(flow.backups, "take", at("backup", "dump-v2"))
    monkeypatch.setattr(flow.migrate, "run", at("migrate", ["backend"]))
    monkeypatch.setattr(flow.checks, "smoke", at("smoke"))
    monkeypatch.setattr(flow.watch_flow, "arm", lambda *a, **k: world.events.append("arm") or "marker")
    monkeypatch.setattr(flow.watch_flow, "disarm", lambda *a, **k: world.events.append("disarm"))
    monkeypatch.setattr(flow.watch_flow, "after_switch", at("watch"))
    monkeypatch.setattr(flow.prune, "after_release", at("prune"))
    return world, ctx, said


def expected_tail(point: str, failure: bool) -> list[str]:
    """The events from the fault on: the undo's, in order, then the history and the lock."""
    step = "switch" if point == "swapped" else point
    outcome = "failed" if failure else "cancelled"
    recorded = [f"history {outcome} {step}", "unlock"]
    logs = ["logs"] if failure and point in ("start", "health", "smoke") else []
    if point in BEFORE_START:
        return [f"fault {point}", *recorded]
    if point == "start":  # the route state does not name it yet
        return [f"fault {point}", *logs, "remove green", "pending cleared", *recorded]
    if point in ("health", "smoke", "switch"):
        disarm = ["disarm"] if point == "switch" else []
        put_back = f"record green {STANDBY.release}"
        return [f"fault {point}", *disarm, *logs, put_back, "remove green", "pending cleared", *recorded]
    return [f"fault {point}"]  # after the swap: nothing is undone, the commit freed the lock


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("point", POINTS)
def test_a_fault_at_each_step_is_undone_in_order(deployment, point, kind):
    world, ctx, said = deployment
    world.fault = (point, FAULTS[kind]())
    with pytest.raises(type(world.fault[1])):
        flow.release(ctx, "v2", watch=60)
    new = world.started
    mark = f"pending {new}"
    events = [e for e in world.events if e != mark]
    tail = events[events.index(f"fault {point}") :]
    assert tail == expected_tail(point, kind == "failure"), world.events
    if "pending cleared" in world.events:  # the undo waited for the mark before it cleared it
        assert world.events.index(mark) < world.events.index("pending cleared")
    assert world.pending is None and world.lock == ""
    last = world.history[-1]
    if point in AFTER_SWAP:
        assert (world.live, world.records["green"].release) == ("green", new)
        assert ("green", new) in world.running and ("green", STANDBY.release) in world.running
        assert last["outcome"] == "ok" and "step" not in last and last["release"] == new
        assert ("the switch had completed" in " ".join(said)) == (point == "swapped")
        return
    assert (world.live, world.records) == ("blue", {"blue": LIVE, "green": STANDBY})
    assert world.running == {("blue", LIVE.release), ("green", STANDBY.release)}
    assert (last["action"], last["version"]) == ("release", "v2")
    assert (last["outcome"], last["step"]) == ("failed" if kind == "failure" else "cancelled", point)
    assert last["reason"] == ("injected failure" if kind == "failure" else "cancelled (interrupt or SIGTERM)")
    assert len(world.history) == 1 and (not new or last["release"] == new)


def test_a_release_without_fault_retires_the_old_standby(deployment):
    world, ctx, said = deployment
    released = flow.release(ctx, "v2", watch=60)
    new = world.started
    events = [e for e in world.events if e != f"pending {new}"]
    assert events == ["lock", "start green", f"record green {new}", "arm", "live green", "retire"]
    assert world.events.index(f"pending {new}") < world.events.index(f"record green {new}")
    assert (released.colour, released.release, released.previous) == ("green", new, "blue")
    assert world.running == {("blue", LIVE.release), ("green", new)} and world.live == "green"
    assert [(h["outcome"], h["release"]) for h in world.history] == [("ok", new)]
    assert said[-1].startswith("released v2: green is live, blue is the warm standby")


def test_a_release_a_killed_one_left_is_undone_when_the_next_takes_the_lock(deployment):
    world, ctx, said = deployment
    world.records["green"] = Record("green", "dead0000", "v9")
    world.pending = Pending("green", "dead0000", "v9", STANDBY)
    world.running.add(("green", "dead0000"))
    world.fault = ("preflight", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        flow.release(ctx, "v2", watch=60)
    assert world.events[:4] == ["lock", f"record green {STANDBY.release}", "remove green", "pending cleared"]
    assert world.records["green"] == STANDBY and ("green", "dead0000") not in world.running
    assert any("an unfinished release of v9 to green (dead0000) was undone" in line for line in said)
