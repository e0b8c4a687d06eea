"""Where a long step reports while it runs, for the CLI to show (cli/progress.py): a
build's own output lines, and a transfer's bytes (an image streamed between engines,
pushed or pulled; a dump fetched). Each is a context manager per step, given its title,
that yields the function to call as it goes. The defaults show nothing, so an adapter
reports without knowing who listens; the CLI sets them, for every thread of the command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Show = Callable[[str], None]
Update = Callable[[int, "int | None"], None]  # bytes done, bytes in all (None: not known)


@contextmanager
def _no_log(title: str) -> Iterator[Show]:
    yield lambda line: None


@contextmanager
def _no_transfer(title: str) -> Iterator[Update]:
    yield lambda done, total: None


BUILD_LOG: list[Callable[[str], AbstractContextManager[Show]]] = [_no_log]
TRANSFER: list[Callable[[str], AbstractContextManager[Update]]] = [_no_transfer]


class Layers:
    """The bytes of a push or pull, summed over its layers' progress events."""

    def __init__(self, update: Update) -> None:
        self.update = update
        self.current: dict[str, int] = {}
        self.total: dict[str, int] = {}

    def event(self, line: dict) -> None:
        detail = line.get("progressDetail") or {}
        layer = line.get("id")
        if not layer or not isinstance(detail, dict) or "current" not in detail:
            return
        self.current[layer] = int(detail.get("current") or 0)
        if detail.get("total"):
            self.total[layer] = int(detail["total"])
        self.update(sum(self.current.values()), sum(self.total.values()) or None)
