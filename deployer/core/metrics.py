"""The edge's metrics (Prometheus text from /_deployer/metrics), turned into what a person
or the post-release watch needs: request rate, 5xx rate and latency quantiles, per colour.

Two latency histograms per series: `request_duration_seconds`, the client's whole exchange
(what users saw: streams, slow uploads and downloads included), and
`upstream_header_seconds`, the upstream's time to its response header, of the requests the
watch judges only. The classes the watch never judges: `edge_<status>` (answers the edge
made itself: a rate limit's 429, max_in_flight's 503), `aborted` (the client went away,
499) and `1xx` (upgrades: WebSocket). With `?top=K` the view also holds the live route's
per-client figures (assets/edge/lua/deployer/clients.lua).

Quantiles come from the histogram buckets, interpolated linearly inside the bucket, as
Prometheus' histogram_quantile does; a threshold that is a bucket bound (0.5 s, say) is
judged exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SAMPLE = re.compile(r"([a-z_0-9]+)\{([^}]*)\} ([0-9.eE+-]+|\+Inf)")
# The families read here, cumulative or windowed; the view's others (the per-service ones for
# Prometheus: docs/observability.md) are not per colour and release, and are left out.
FAMILY = re.compile(
    r"deployer_(?:window_)?(requests_total|request_duration_seconds_bucket|upstream_header_seconds_bucket"
    r"|client_addresses|top_client_5xx|top_client_slow)"
)
LABEL = re.compile(r'([a-z_]+)="([^"]*)"')
WINDOW = re.compile(r"# window ([0-9]+) seconds")
JUDGED = ("2xx", "3xx", "4xx", "5xx")  # answers of the release's own upstream


@dataclass
class Series:
    """One colour's (and route's) counters from the edge's metrics."""

    route: str
    colour: str
    release: str
    classes: dict[str, int] = field(default_factory=dict)
    buckets: dict[float, int] = field(default_factory=dict)  # the whole exchange: bound -> cumulative count
    upstream: dict[float, int] = field(default_factory=dict)  # the upstream's header time, judged requests
    addresses: int = 0  # client addresses with a 5xx or a request slower than 100 ms (?top=K)
    top_errors: int = 0  # the 5xx of the K addresses with the most
    top_slow: dict[float, int] = field(default_factory=dict)  # bound -> slower requests of the K with the most

    @property
    def total(self) -> int:
        """Every request, judged or not."""
        return sum(self.classes.values())

    @property
    def requests(self) -> int:
        """The requests the watch judges: answers of the release's upstream."""
        return sum(self.classes.get(c, 0) for c in JUDGED)

    @property
    def errors(self) -> int:
        return self.classes.get("5xx", 0)

    @property
    def edge(self) -> dict[str, int]:
        """Answers the edge made itself, per status."""
        return {k.removeprefix("edge_"): v for k, v in sorted(self.classes.items()) if k.startswith("edge_")}

    @property
    def aborted(self) -> int:
        return self.classes.get("aborted", 0)

    @property
    def upgrades(self) -> int:
        return self.classes.get("1xx", 0)

    def quantile(self, q: float) -> float | None:
        return quantile(self.buckets, q)

    def upstream_quantile(self, q: float) -> float | None:
        return quantile(self.upstream, q)

    def above(self, seconds: float) -> int:
        """How many requests took longer than `seconds` (exact when it is a bucket bound)."""
        return above(self.buckets, seconds)

    def add(self, other: Series) -> None:
        for k, v in other.classes.items():
            self.classes[k] = self.classes.get(k, 0) + v
        for mine, theirs in (
            (self.buckets, other.buckets),
            (self.upstream, other.upstream),
            (self.top_slow, other.top_slow),
        ):
            for b, v in theirs.items():
                mine[b] = mine.get(b, 0) + v
        self.addresses += other.addresses
        self.top_errors += other.top_errors


def above(buckets: dict[float, int], seconds: float) -> int:
    """How many of a cumulative histogram's requests took longer than `seconds`."""
    within = 0
    for bound, count in sorted(buckets.items()):
        if bound <= seconds:
            within = count
    return max(buckets.values(), default=0) - within


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
        family = FAMILY.fullmatch(name)
        if not family:
            continue
        name = family.group(1)
        tags = dict(LABEL.findall(labels))
        key = (tags.get("route", ""), tags.get("colour", ""), tags.get("release", ""))
        s = series.setdefault(key, Series(*key))
        n = int(float(value))
        if name == "requests_total":
            s.classes[tags.get("class", "")] = s.classes.get(tags.get("class", ""), 0) + n
        elif name == "request_duration_seconds_bucket":
            s.buckets[_bound(tags.get("le"))] = n
        elif name == "upstream_header_seconds_bucket":
            s.upstream[_bound(tags.get("le"))] = n
        elif name == "client_addresses":
            s.addresses = n
        elif name == "top_client_5xx":
            s.top_errors = n
        elif name == "top_client_slow":
            s.top_slow[_bound(tags.get("above"))] = n
    return window, list(series.values())


def _bound(text: str | None) -> float:
    return float("inf") if text in (None, "+Inf") else float(text)


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
        if s.route == route:
            out.setdefault(s.colour, Series(route, s.colour, "")).add(s)
    return out


def live_traffic(text: str, window: int) -> dict[str, dict]:
    """Per colour, the live route's figures in the metrics text of the last `window` seconds
    (what `status` shows): requests, rate, 5xx count and share of the judged requests, the
    whole exchange's p99 and the upstream's, and what the watch does not judge."""
    served, series = parse(text)
    seconds = served or window
    out = {}
    for colour, s in by_colour(series, "live").items():
        p99, upstream = s.quantile(0.99), s.upstream_quantile(0.99)
        out[colour] = {
            "requests": s.total,
            "rate": round(s.total / seconds, 2),
            "errors_5xx": s.errors,
            "error_rate": round(s.errors / s.requests, 4) if s.requests else 0.0,
            "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
            "upstream_p99_ms": round(upstream * 1000, 1) if upstream is not None else None,
            "edge_answers": s.edge,
            "aborted": s.aborted,
            "upgrades": s.upgrades,
            "window_s": seconds,
        }
    return out
