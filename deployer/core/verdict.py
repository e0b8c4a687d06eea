"""The post-release watch's verdict, as pure rules (core/watch.py has the marker and a tick).

What is judged is the release's own work: the answers of its upstream on the live route,
with latency as the upstream's time to its response header (for an exchange of at most
100 ms in all, that whole time: the edge looks nothing up for it). Answers the edge made itself
(a limit's 429, max_in_flight's 503, maintenance), client aborts (499) and upgrades (101)
are counted apart and never judged (core/metrics.py).

    too-few   fewer judged requests than watch.min_requests: no verdict
    breach    the 5xx share above its limit, or more than 1 % of the requests slower than
              the p99 limit (that is: the upstream's p99 above it)
    ok        judged, within both limits

The limits (`limits`): in mode "relative" (the default), the previous live release's own
figures over the minute before the switch (its baseline): its 5xx share plus
watch.error_margin, and its p99 times watch.p99_factor but never below watch.p99_floor, so
that a near-zero baseline does not make noise a breach. In mode "absolute", or without a
baseline (too little traffic before the switch): watch.max_error_rate and watch.max_p99.

No address decides alone: the watch.min_clients - 1 client addresses with the most 5xx
(and, for each latency bound, with the most requests slower than it) are left out of the
judged figures, so a breach needs bad requests from at least watch.min_clients addresses.
The edge counts per address the 5xx and the requests slower than 100 ms; below that bound
the slow requests of the top addresses are taken as their count above 100 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from deployer.core import metrics as metrics_rule
from deployer.core.durations import seconds_text

TRACKED = 0.1  # seconds: the edge counts per client address the requests slower than this


@dataclass(frozen=True)
class Rules:
    """[watch]'s thresholds (config/safety.py checks them)."""

    mode: str = "relative"  # relative | absolute
    max_error_rate: float = 0.01
    max_p99: float = 0.5
    min_requests: int = 50
    error_margin: float = 0.01
    p99_factor: float = 2.0
    p99_floor: float = 0.2
    min_clients: int = 2

    @property
    def top(self) -> int:
        """How many addresses with the most bad requests are left out."""
        return self.min_clients - 1


@dataclass(frozen=True)
class Figures:
    """The judged live traffic of one release over `seconds`."""

    requests: int
    errors: int
    seconds: float
    upstream: dict[float, int] = field(default_factory=dict)  # cumulative histogram of header times
    top_errors: int = 0  # 5xx of the addresses left out
    top_slow: dict[float, int] = field(default_factory=dict)  # bound -> their requests slower than it
    addresses: int = 0  # addresses with a 5xx or a request slower than 100 ms
    edge: dict[str, int] = field(default_factory=dict)  # not judged: the edge's own answers per status
    aborted: int = 0  # not judged: the client went away
    upgrades: int = 0  # not judged: 101

    @property
    def p99(self) -> float | None:
        return metrics_rule.quantile(self.upstream, 0.99)

    def slow(self, seconds: float) -> float:
        """Requests slower than `seconds` (exact at a bucket bound, else interpolated)."""
        return _above(self.upstream, seconds)

    def left_out_slow(self, seconds: float) -> float:
        """The slower requests of the addresses left out (counted from 100 ms up: below it,
        theirs above 100 ms), interpolated between the bounds."""
        if not self.top_slow:
            return 0.0
        bounds = sorted(self.top_slow)
        if seconds <= bounds[0]:
            return float(self.top_slow[bounds[0]])
        for lower, upper in pairwise(bounds):
            if seconds < upper:
                a, b = self.top_slow[lower], self.top_slow[upper]
                return a + (b - a) * (seconds - lower) / (upper - lower)
        return float(self.top_slow[bounds[-1]])

    def judged_errors(self) -> tuple[int, int]:
        """(5xx, requests) once the addresses with the most 5xx are left out."""
        return max(0, self.errors - self.top_errors), max(0, self.requests - self.top_errors)

    def judged_p99(self) -> float | None:
        """The upstream's p99 once the addresses with the most slow requests are left out."""
        if not self.top_slow:
            return self.p99
        removed = self.left_out_slow(TRACKED)
        total = self.requests - removed
        adjusted, floor = {}, 0.0
        for bound in sorted(self.upstream):  # cumulative counts without them, kept non-decreasing
            slower = max(0.0, self.slow(bound) - (self.left_out_slow(bound) if bound >= TRACKED else removed))
            floor = max(floor, total - slower)
            adjusted[bound] = floor
        return metrics_rule.quantile(adjusted, 0.99)

    def not_judged(self) -> dict:
        return {"edge_answers": dict(self.edge), "aborted": self.aborted, "upgrades": self.upgrades}

    def text(self) -> str:
        p99 = f"{self.p99 * 1000:.0f} ms" if self.p99 is not None else "-"
        rate = self.errors / self.requests if self.requests else 0.0
        out = f"{self.requests} requests in {seconds_text(self.seconds)}, 5xx {rate:.1%} ({self.errors}), p99 {p99}"
        parts = [f"{n} edge {status}" for status, n in self.edge.items()]
        parts += [f"{n} {what}" for n, what in ((self.aborted, "aborted"), (self.upgrades, "upgrades")) if n]
        return out + (f"; not judged: {', '.join(parts)}" if parts else "")

    def record(self) -> dict:
        p99 = self.p99
        return {
            "requests": self.requests,
            "errors_5xx": self.errors,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
            "seconds": round(self.seconds, 1),
            "addresses": self.addresses,
            "not_judged": self.not_judged(),
        }


@dataclass(frozen=True)
class Baseline:
    """The previous live release's judged figures over the minute before the switch."""

    release: str
    requests: int
    errors: int
    p99: float | None  # seconds
    seconds: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def render(self) -> str:
        p99 = f"{self.p99:.4f}" if self.p99 is not None else "-"
        return f"{self.release} {self.requests} {self.errors} {p99} {self.seconds:.0f}"

    @classmethod
    def parse(cls, text: str) -> Baseline | None:
        try:
            release, requests, errors, p99, seconds = text.split()
            return cls(release, int(requests), int(errors), None if p99 == "-" else float(p99), float(seconds))
        except ValueError:
            return None

    def text(self) -> str:
        p99 = f"{self.p99 * 1000:.0f} ms" if self.p99 is not None else "-"
        return (
            f"{self.requests} requests in {seconds_text(self.seconds)}, 5xx {self.error_rate:.1%} ({self.errors}), "
            f"p99 {p99}"
        )

    def record(self) -> dict:
        return {
            "release": self.release,
            "requests": self.requests,
            "errors_5xx": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p99_ms": round(self.p99 * 1000, 1) if self.p99 is not None else None,
            "seconds": round(self.seconds),
        }


def baseline(fig: Figures, release: str) -> Baseline:
    """The baseline from the previous release's figures (judged the same way)."""
    errors, requests = fig.judged_errors()
    return Baseline(release, requests, errors, fig.judged_p99(), fig.seconds)


@dataclass(frozen=True)
class Limits:
    """The watch's limits for the live release."""

    error_rate: float
    p99: float  # seconds
    relative: bool  # from the previous release's baseline

    def text(self) -> str:
        return f"5xx ≤ {self.error_rate:.1%}, p99 ≤ {seconds_text(round(self.p99, 3))}"

    def record(self) -> dict:
        return {"error_rate": round(self.error_rate, 4), "p99_ms": round(self.p99 * 1000, 1), "relative": self.relative}


def limits(rules: Rules, base: Baseline | None) -> Limits:
    """The limits a release is judged against (usable: `usable_baseline`)."""
    if rules.mode == "relative" and base is not None and base.requests >= rules.min_requests:
        p99 = max((base.p99 or 0.0) * rules.p99_factor, rules.p99_floor)
        return Limits(min(1.0, base.error_rate + rules.error_margin), p99, True)
    return Limits(rules.max_error_rate, rules.max_p99, False)


@dataclass(frozen=True)
class Judgement:
    """The watch's judgement of a reading, and why."""

    verdict: str  # ok, breach, too-few
    reasons: tuple[str, ...]
    figures: Figures
    limits: Limits | None = None
    left_out: dict = field(default_factory=dict)  # the bad requests of the addresses left out

    def text(self) -> str:
        """The figures, and what the addresses left out had (when they had anything)."""
        errors, slow = self.left_out.get("errors_5xx", 0), self.left_out.get("slow", 0)
        if not errors and not slow:
            return self.figures.text()
        who = "the address" if self.left_out["addresses"] == 1 else f"the {self.left_out['addresses']} addresses"
        return f"{self.figures.text()}; left out: {errors} 5xx and {slow} slow answers of {who} with the most"

    def record(self) -> dict:
        extra = {"limits": self.limits.record()} if self.limits else {}
        return {**self.figures.record(), **extra, **({"left_out": self.left_out} if self.left_out else {})}


def judge(fig: Figures, rules: Rules, lim: Limits) -> Judgement:
    if fig.requests < rules.min_requests:
        why = f"only {fig.requests} live requests, fewer than watch.min_requests = {rules.min_requests}"
        return Judgement("too-few", (why,), fig, lim)
    reasons = []
    errors, requests = fig.judged_errors()
    rate = errors / requests if requests else 0.0
    if rate > lim.error_rate:
        reasons.append(f"5xx rate {rate:.1%} > {lim.error_rate:.1%}{_from(fig.top_errors, rules)}")
    left = fig.left_out_slow(lim.p99)
    slow, judged = fig.slow(lim.p99) - left, fig.requests - left
    if slow > 0 and slow * 100 > judged:
        reasons.append(
            f"p99 above {seconds_text(round(lim.p99, 3))} ({slow:.0f} of {judged:.0f} requests, {slow / judged:.1%},"
            f" took longer){_from(round(left), rules)}"
        )
    left_out = {"errors_5xx": fig.top_errors, "slow": round(left), "addresses": rules.top} if rules.top else {}
    return Judgement("breach" if reasons else "ok", tuple(reasons), fig, lim, left_out)


def _from(left: int, rules: Rules) -> str:
    if not rules.top or not left:
        return ""
    who = "the address" if rules.top == 1 else f"the {rules.top} addresses"
    return f", without {left} of {who} with the most"


def _above(buckets: dict[float, int], seconds: float) -> float:
    """Requests of a cumulative histogram slower than `seconds`, interpolated in its bucket."""
    if not buckets:
        return 0.0
    return max(buckets.values()) - _within(buckets, seconds)


def _within(buckets: dict[float, int], seconds: float) -> float:
    lower_bound, lower_count = 0.0, 0
    for bound, count in sorted(buckets.items()):
        if seconds < bound:
            if bound == float("inf"):
                return float(lower_count)
            return lower_count + (count - lower_count) * (seconds - lower_bound) / (bound - lower_bound)
        lower_bound, lower_count = bound, count
    return float(lower_count)


def figures(text: str, colour: str, release: str | None, seconds: float) -> Figures:
    """The live traffic of one release (None: every release of the colour) in a metrics answer."""
    _, series = metrics_rule.parse(text)
    total = metrics_rule.Series("live", colour, release or "")
    for s in series:
        if s.route == "live" and s.colour == colour and (release is None or s.release == release):
            total.add(s)
    return Figures(
        requests=total.requests,
        errors=total.errors,
        seconds=seconds,
        upstream=dict(total.upstream),
        top_errors=total.top_errors,
        top_slow=dict(total.top_slow),
        addresses=total.addresses,
        edge=total.edge,
        aborted=total.aborted,
        upgrades=total.upgrades,
    )
