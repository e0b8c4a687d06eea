"""What `deployer top` shows, from one reading of the edge: its route state and its metrics
of the last few seconds. Pure: the flow reads, this shapes, the CLI draws.

Per colour, the live route's traffic (what users get) and the preview route's (the deployer's
checks, or a tester's), each as requests per second, the 5xx share of the release's own
answers, p50 and p99 of the whole exchange.
"""

from __future__ import annotations

from typing import Any

from deployer.core import metrics, names


def figures(series: metrics.Series | None, seconds: float) -> dict[str, Any]:
    """One route's figures: rate, 5xx share of the judged answers, p50 and p99 (ms)."""
    if series is None or not series.total:
        return {"requests": 0, "rate": 0.0, "error_rate": 0.0, "p50_ms": None, "p99_ms": None}

    def ms(q: float) -> float | None:
        value = series.quantile(q)
        return round(value * 1000, 1) if value is not None else None

    return {
        "requests": series.total,
        "rate": round(series.total / seconds, 2),
        "error_rate": round(series.errors / series.requests, 4) if series.requests else 0.0,
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
    }


def snapshot(text: str, window: int, state: Any, at: str) -> dict[str, Any]:
    """`state`: the edge's route state (core/state.py EdgeState); `text`: its metrics of the
    last `window` seconds. The answer of `top --json`."""
    served, series = metrics.parse(text)
    seconds = served or window
    routes = {route: metrics.by_colour(series, route) for route in ("live", "preview")}
    colours = {}
    for colour in names.COLOURS:
        record = state.record(colour)
        role = "live" if state.live == colour else "standby" if record else "-"
        colours[colour] = {
            "role": role,
            "release": record.release if record else None,
            "version": record.version if record else None,
            **{route: figures(by.get(colour), seconds) for route, by in routes.items()},
        }
    live = state.live_record
    return {
        "at": at,
        "window_s": seconds,
        "live": state.live or None,
        "live_version": live.version if live else None,
        "colours": colours,
    }
