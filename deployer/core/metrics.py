"""The edge's metrics (Prometheus text from /_deployer/metrics), turned into what a person
or the post-release watch needs: request rate, 5xx rate and latency quantiles, per colour.

Quantiles come from the histogram buckets, interpolated linearly inside the bucket, as
Prometheus' histogram_quantile does; a threshold that is a bucket bound (0.5 s, say) is
judged exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SAMPLE = re.compile(r"([a-z_]+)\{([^}]*)\} ([0-9.eE+-]+|\+Inf)")
LABEL = re.compile(r'([a-z_]+)="([^"]*)"')
WINDOW = re.compile(r"# window ([0-9]+) seconds")


@dataclass
class Series:
    route: str
    colour: str
    release: str
    classes: dict[str, int] = field(default_factory=dict)
    buckets: dict[float, int] = field(default_factory=dict)  # upper bound -> cumulative count

    @property
    def requests(self) -> int:
        return sum(self.classes.values())

    @property
    def errors(self) -> int:
        return self.classes.get("5xx", 0)

    def quantile(self, q: float) -> float | None:
        return quantile(self.buckets, q)

    def above(self, seconds: float) -> int:
        """How many requests took longer than `seconds` (exact when it is a bucket bound)."""
        within = 0
        for bound, count in sorted(self.buckets.items()):
            if bound <= seconds:
                within = count
        total = max(self.buckets.values(), default=0)
        return total - within


def parse(text: str) -> tuple[int | None, list[Series]]:
    """(window in seconds or None for cumulative figures, one Series per route/colour/release)."""
    window = None
    m = WINDOW.search(text)
    if m:
        window = int(m.group(1))
    series: dict[tuple[str, str, str], Series] = {}
    for line in text.splitlines():
        m = SAMPLE.fullmatch(line.strip())
        if not m:
            continue
        name, labels, value = m.groups()
        tags = dict(LABEL.findall(labels))
        key = (tags.get("route", ""), tags.get("colour", ""), tags.get("release", ""))
        s = series.setdefault(key, Series(*key))
        if name.endswith("requests_total"):
            s.classes[tags.get("class", "")] = s.classes.get(tags.get("class", ""), 0) + int(float(value))
        elif name.endswith("request_duration_seconds_bucket"):
            bound = float("inf") if tags.get("le") == "+Inf" else float(tags.get("le", "inf"))
            s.buckets[bound] = int(float(value))
    return window, list(series.values())


def quantile(buckets: dict[float, int], q: float) -> float | None:
    if not buckets:
        return None
    ordered = sorted(buckets.items())
    total = ordered[-1][1]
    if total == 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0
    for bound, count in ordered:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return ordered[-1][0]


def by_colour(series: list[Series], route: str = "live") -> dict[str, Series]:
    """Sum the series of one route kind per colour (all its releases together)."""
    out: dict[str, Series] = {}
    for s in series:
        if s.route != route:
            continue
        total = out.setdefault(s.colour, Series(route, s.colour, ""))
        for k, v in s.classes.items():
            total.classes[k] = total.classes.get(k, 0) + v
        for b, v in s.buckets.items():
            total.buckets[b] = total.buckets.get(b, 0) + v
    return out


def live_traffic(text: str, window: int) -> dict[str, dict]:
    """Per colour, the live route's figures in the metrics text of the last `window` seconds
    (what `status` shows): requests, rate, 5xx count and share, p99."""
    served, series = parse(text)
    seconds = served or window
    out = {}
    for colour, s in by_colour(series, "live").items():
        p99 = s.quantile(0.99)
        out[colour] = {
            "requests": s.requests,
            "rate": round(s.requests / seconds, 2),
            "errors_5xx": s.errors,
            "error_rate": round(s.errors / s.requests, 4) if s.requests else 0.0,
            "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
            "window_s": seconds,
        }
    return out
