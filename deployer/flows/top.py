"""`deployer top`: one reading of the edge (its route state and the metrics of the last few
seconds) per refresh, shaped by core/topview.py. Two execs in the edge per reading, so it
works wherever the edge does: one host, over ssh, a swarm's control edge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deployer.core import topview
from deployer.core.steps import Step
from deployer.flows.context import Context

WINDOW = 10  # seconds of traffic per reading: two of the edge's 5-second slots


def sample(ctx: Context, window: int = WINDOW) -> dict[str, Any]:
    state = ctx.edge.state(step=Step.TOP)
    text = ctx.edge.metrics(window)
    return topview.snapshot(text, window, state, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
