"""What `deployer top` shows, from one reading of the edge: its route state and its metrics
of the last few seconds. Pure: the flow reads, this shapes, the CLI draws.

Per colour, the live route's traffic (what users get) and the preview route's (the deployer's
checks, or a tester's), each as requests per second, the 5xx share of the release's own
answers, p50 and p99 of the whole exchange. Per service, the same of its public traffic
between two readings of the edge's cumulative per-service counters, and what is in flight.
"""

from __future__ import annotations

import re
from typing import Any

from deployer.core import metrics, names


def figures(series: metrics.Series | None, seconds: float) -> dict[str, Any]:
    """One route's figures: rate, 5xx share of the judged answers, p50 and p99 (ms)."""
    if series is None or not series.total:
        return {"requests": 0, "rate": 0.0, "error_rate": 0.0, "p50_ms": None, "p99_ms": None}

    return {
        "requests": series.total,
        "rate": round(series.total / seconds, 2),
        "error_rate": round(series.errors / series.requests, 4) if series.requests else 0.0,
        "p50_ms": _ms(series.buckets, 0.5),
        "p99_ms": _ms(series.buckets, 0.99),
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


# -- per service (the edge's deployer_service_* families, cumulative: docs/observability.md) ---
SERVICE_SAMPLE = re.compile(
    r"(deployer_service_[a-z_]+)\{((?:[^\"}\\]|\\.|\"(?:[^\"\\]|\\.)*\")*)\} ([0-9.eE+-]+|\+Inf)"
)
SERVICE_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def _ms(buckets: dict[float, int], q: float) -> float | None:
    value = metrics.quantile(buckets, q)
    return round(value * 1000, 1) if value is not None else None


def service_counts(text: str) -> dict[str, dict[str, Any]]:
    """Per service, summed over its prefixes and colours: requests by class, the duration
    histogram (bound -> cumulative count), upstream errors, and requests in flight now."""
    out: dict[str, dict[str, Any]] = {}
    for name, labels, value in SERVICE_SAMPLE.findall(text):
        tags = dict(SERVICE_LABEL.findall(labels))
        s = out.setdefault(
            tags.get("service", ""), {"classes": {}, "buckets": {}, "upstream_errors": 0, "in_flight": 0}
        )
        n = int(float(value))
        if name == "deployer_service_requests_total":
            s["classes"][tags.get("class", "")] = s["classes"].get(tags.get("class", ""), 0) + n
        elif name == "deployer_service_request_duration_seconds_bucket":
            bound = float("inf") if tags.get("le") == "+Inf" else float(tags.get("le", "inf"))
            s["buckets"][bound] = s["buckets"].get(bound, 0) + n
        elif name == "deployer_service_upstream_errors_total":
            s["upstream_errors"] += n
        elif name == "deployer_service_in_flight":
            s["in_flight"] += n
    out.pop("", None)
    return out


def services(before: dict[str, dict[str, Any]] | None, now: dict[str, dict[str, Any]], seconds: float) -> dict:
    """Each service's figures between two readings `seconds` apart: req/s, the 5xx share of
    its upstream's answers, p50 and p99 (ms), upstream errors; in flight now. Without an
    earlier reading, only what is in flight."""
    out = {}
    for name, s in sorted(now.items()):
        was = (before or {}).get(name)
        if was is None or seconds <= 0:
            out[name] = {"rate": None, "error_rate": None, "p50_ms": None, "p99_ms": None,
                         "upstream_errors": None, "in_flight": s["in_flight"]}  # fmt: skip
            continue
        classes = {k: v - was["classes"].get(k, 0) for k, v in s["classes"].items()}
        judged = sum(classes.get(c, 0) for c in metrics.JUDGED)
        buckets = {b: v - was["buckets"].get(b, 0) for b, v in s["buckets"].items()}
        out[name] = {
            "rate": round(sum(classes.values()) / seconds, 2),
            "error_rate": round(classes.get("5xx", 0) / judged, 4) if judged else 0.0,
            "p50_ms": _ms(buckets, 0.5),
            "p99_ms": _ms(buckets, 0.99),
            "upstream_errors": s["upstream_errors"] - was["upstream_errors"],
            "in_flight": s["in_flight"],
        }
    return out
