"""An in-process deployment for the release's undo tests: the edge's route state, history and
lock, and a runtime whose releases are a set, both in memory. Every change is an event in
order, and `fault` makes the call at one point raise (a failure, or a cancel)."""

from __future__ import annotations

import json
from typing import Any

from deployer.adapters.edge import Taken
from deployer.core.state import EdgeState, Pending, Record
from deployer.runtime.base import Healthy

LIVE = Record("blue", "b1b1b1b1", "v1")  # serves live traffic before the release
STANDBY = Record("green", "0a0a0a0a", "v0")  # the idle colour's release: the old standby


class World:
    def __init__(self) -> None:
        self.live = "blue"
        self.records: dict[str, Record | None] = {"blue": LIVE, "green": STANDBY}
        self.pending: Pending | None = None
        self.history: list[dict[str, Any]] = []
        self.lock = ""
        self.running = {("blue", LIVE.release), ("green", STANDBY.release)}
        self.events: list[str] = []
        self.fault: tuple[str, BaseException] | None = None
        self.started = ""  # the new release's id, once started

    def hit(self, point: str) -> None:
        """A call at `point`: raise there when that is where the fault is."""
        if self.fault and self.fault[0] == point:
            self.events.append(f"fault {point}")
            raise self.fault[1]

    def state(self) -> EdgeState:
        return EdgeState(self.live, dict(self.records), pending=self.pending)


class FakeEdge:
    """What the release, its lock and its undo ask of the edge (adapters/edge.py)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.token = ""

    def require(self) -> None:
        pass

    def take_lock(self, holder: Any, lease: int, *, step: str = "lock") -> Taken:
        assert not self.world.lock, "the lock is held"
        self.world.lock = holder.token
        self.world.events.append("lock")
        return Taken(self.world.state(), "")

    def renew_lock(self, token: str, lease: int) -> bool:
        return self.world.lock == token

    def free_lock(self, token: str) -> None:
        if self.world.lock == token:
            self.world.lock = ""
            self.world.events.append("unlock")

    def state(self, *, step: str = "read routes") -> EdgeState:
        return self.world.state()

    def write_pending(self, pending: Pending | None, *, step: str) -> None:
        self.world.pending = pending
        self.world.events.append(f"pending {pending.release if pending else 'cleared'}")

    def write_record(self, colour: str, record: Record | None, *, step: str) -> None:
        self.world.records[colour] = record
        self.world.events.append(f"record {colour} {record.release if record else 'none'}")

    def commit(self, colour: str, verify: Any, history_line: str, token: str, timeout: float) -> None:
        """One exec in the real edge: make it live, clear the mark, record, free the lock."""
        self.world.hit("switch")
        self.world.live, self.world.pending, self.world.lock = colour, None, ""
        self.world.history.append(json.loads(history_line))
        self.world.events.append(f"live {colour}")
        self.world.hit("swapped")  # the cancel lands after the swap, before the exec returns

    def append_history(self, line: str, *, step: str) -> None:
        entry = json.loads(line)
        self.world.history.append(entry)
        self.world.events.append(f"history {entry['outcome']} {entry.get('step', '')}")


class FakeRuntime:
    """Where the releases run (runtime/base.py), as a set of (colour, release id)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def prepare(self) -> None:
        pass

    def pin(self, version: str, pinned: Any = None) -> dict[str, str]:
        return {}

    def start(self, colour: str, release_id: str, version: str, env: Any, images: dict[str, str]) -> None:
        self.world.started = release_id
        self.world.hit("start")
        self.world.running.add((colour, release_id))
        self.world.events.append(f"start {colour}")

    def wait_healthy(self, colour: str, release_id: str) -> Healthy:
        self.world.hit("health")
        return Healthy(0.01, [])

    def logs(self, colour: str, release_id: str) -> str:
        self.world.events.append("logs")
        return "--- its last lines ---"

    def remove(self, colour: str, release_id: str) -> None:
        self.world.running.discard((colour, release_id))
        self.world.events.append(f"remove {colour}")

    def clear_told(self, keep: set[tuple[str, str]]) -> None:
        return None

    def retire(self, state: Any = None, *, wait: bool = True, among: Any = None, keep: Any = None) -> list[str]:
        self.world.hit("retire")
        doomed = sorted(r for r in self.world.running if r not in keep)
        self.world.running -= set(doomed)
        self.world.events.append("retire")
        return [f"{c}-{r}" for c, r in doomed]


class NoEngine:
    """The engine of a fake deployment: any use is a test failure (everything goes through the fakes)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the release used the engine ({name})")
