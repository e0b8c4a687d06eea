"""Waiting on the engine, written once: the package's poll loops are `until` (tenacity), each
with the reason it polls in a comment where it is called (the engine sends no event for it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], *, seconds: float, every: float) -> T:
    """Call `check` every `every` seconds until it answers something true, for at most
    `seconds` (at least once); returns its last answer, true or not. An exception in `check`
    is not retried: it goes to the caller. A first answer that is already true costs no
    import: every exec waits here for its exit code, a switch among them."""
    first = check()
    if first or seconds <= 0:
        return first
    from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

    retrying = Retrying(
        stop=stop_after_delay(seconds),
        wait=wait_fixed(every),
        retry=retry_if_result(lambda answer: not answer),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    return retrying(check)
