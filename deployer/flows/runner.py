"""The step runner of a release: every step is timed, named in its errors, and undone
through one mechanism; a failure or a cancel is recorded in the history like a success.

    run = Run("release", say)
    with run.step(Step.HEALTH):
        ...
    run.on_failure(undo)        # undo callbacks, run last-in first-out when the run fails

Undo callbacks decide what to do from the host's truth (they re-read the route state);
they never trust what the process believes happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from deployer.adapters.engine import debug
from deployer.adapters.failures import lost
from deployer.core import history
from deployer.core.masking import mask
from deployer.core.steps import WHAT, Step
from deployer.errors import Cancelled, DeployerError


def background(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """fn(*args, **kwargs) in a thread of its own, started now. The caller waits for the
    Future before the command returns (the CLI leaves with os._exit)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deployer-bg")
    try:
        return pool.submit(fn, *args, **kwargs)
    finally:
        pool.shutdown(wait=False)


def finished(future: Future | None) -> None:
    """Wait for a background call, whatever its outcome (an undo's first step)."""
    if future is not None:
        future.exception()


class Run:
    def __init__(self, action: str, say: Callable[[str], None]) -> None:
        self.action = action
        self.say = say
        self.began = time.monotonic()
        self.steps: dict[str, float] = {}
        self.current: Step | None = None
        self._undo: list[tuple[str, Callable[[], Any]]] = []
        self.guard: Callable[[], None] | None = None  # raises when the run may not go on (a lost lock)

    @contextmanager
    def step(self, step: Step) -> Iterator[None]:
        self.current = step
        harness_pause(step, self.say)
        started = time.monotonic()
        try:
            if self.guard is not None:
                self.guard()
            yield
        except DeployerError as exc:
            if exc.step is None:
                exc.step = step
            raise
        except Exception as exc:
            engine_error = lost(exc, step.value)
            if engine_error is None:
                raise
            raise engine_error from exc
        finally:
            self.steps[step.value] = round(time.monotonic() - started, 2)
            debug(f"step {step.value}: {time.monotonic() - started:.3f}s")

    def on_failure(self, what: str, undo: Callable[[], Any]) -> None:
        self._undo.append((what, undo))

    def seconds(self) -> float:
        return round(time.monotonic() - self.began, 2)

    def outcome(self, exc: BaseException) -> tuple[str, str]:
        """(ok/failed/cancelled, reason) of a failure."""
        if isinstance(exc, (KeyboardInterrupt, Cancelled)):
            return history.CANCELLED, "cancelled (interrupt or SIGTERM)"
        return history.FAILED, mask(str(exc)) or type(exc).__name__

    def undo(self) -> list[str]:
        """Run the undo callbacks, last first; returns what could not be undone."""
        problems = []
        while self._undo:
            what, fn = self._undo.pop()
            try:
                fn()
            except BaseException as exc:  # keep undoing the rest; the original failure is the one to report
                problems.append(f"{what}: {mask(str(exc)) or type(exc).__name__}")
        return problems


def harness_pause(step: Step, say: Callable[[str], None]) -> None:
    """A test harness hook, not a user option: DEPLOYER_TEST_PAUSE=<step>:<seconds> sleeps at
    the start of that step, so a test can signal or kill the process there."""
    import os

    spec = os.environ.get("DEPLOYER_TEST_PAUSE", "")
    name, _, seconds = spec.partition(":")
    if name == step.value:
        say(f"test pause before {step.value} ({WHAT.get(step, '')})")
        time.sleep(float(seconds or 30))
