"""`deployer top`: one reading of the edge (its route state and the metrics of the last few
seconds) per refresh, shaped by core/topview.py. Two execs in the edge per reading, so it
works wherever the edge does: one host, over ssh, a swarm's control edge."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from deployer.core import topview
from deployer.core.steps import Step
from deployer.flows.context import Context

WINDOW = 10  # seconds of traffic per reading: two of the edge's 5-second slots


class Reader:
    """Readings of the edge, one per call: the colours from its windowed metrics, the services
    from the change of its cumulative per-service counters since the oldest reading of the
    last `window` seconds (the first reading has none to compare with: in flight only)."""

    def __init__(self, ctx: Context, window: int = WINDOW) -> None:
        self.ctx, self.window = ctx, window
        self.seen: deque[tuple[float, dict]] = deque()

    def sample(self) -> dict[str, Any]:
        state = self.ctx.edge.state(step=Step.TOP)
        text = self.ctx.edge.metrics(self.window)
        counts = topview.service_counts(self.ctx.edge.metrics())
        now = time.monotonic()
        while self.seen and now - self.seen[0][0] > self.window:
            self.seen.popleft()
        before, seconds = (self.seen[0][1], now - self.seen[0][0]) if self.seen else (None, 0.0)
        self.seen.append((now, counts))
        reading = topview.snapshot(text, self.window, state, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        reading["services"] = topview.services(before, counts, seconds)
        return reading
