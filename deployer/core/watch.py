"""The watch after a switch, as pure rules: the marker that makes a running watch
discoverable on the host, the script of one tick, and the verdict.

The marker is the route state file `watch` (core/state.py), written when a release starts
its watch and removed when the watch ends. It names the release, the colour to switch back
to, the deadline by the edge's clock, and a beat the watching process renews on every
tick: a marker whose beat is old belongs to a process that is gone, and `deployer watch`
may take its watch over. A release refuses to start while a live watch runs.

The verdict comes from the edge's exact counters of live traffic to the watched release
(route "live": the deployer's own probes are route "probe" and never count):

    too-few   fewer requests than watch.min_requests: no verdict, neither pass nor fail
    breach    5xx share above watch.max_error_rate, or more than 1 % of requests slower
              than watch.max_p99 (that is: p99 above it; exact when it is a bucket bound)
    ok        judged, within both thresholds

Every tick judges the last SPAN seconds (a sliding window, as Flagger's and Argo's
analyses do); the end of the window judges all of it.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

from deployer.core import metrics as metrics_rule
from deployer.core import probe as probe_rule
from deployer.core import state as route_state
from deployer.core.durations import seconds_text

SPAN = 60  # seconds judged on each tick
TICK = 2.0  # seconds between ticks
STALE = 90  # a beat older than this: the watching process is gone (a rollback may take a while)
CHECK_FAILURES = 2  # the own check must fail this many ticks in a row to count as a breach
PATH = f"{route_state.DIR}/watch"
SEP = "@@deployer-watch@@"


@dataclass(frozen=True)
class Marker:
    colour: str  # the watched (live) colour
    release: str
    version: str
    previous: str  # the colour a rollback switches back to
    previous_version: str
    started: int  # epoch seconds, by the edge's clock
    deadline: int
    beat: int
    holder: str  # who watches: user@host pid N
    standby: route_state.Record | None = None  # the colour's release before this one (a rollback puts it back)

    def render(self) -> str:
        standby = base64.b64encode(self.standby.render().encode()).decode() if self.standby else "-"
        fields = [
            ("colour", self.colour),
            ("release", self.release),
            ("version", self.version),
            ("previous", self.previous),
            ("previous_version", self.previous_version or "-"),
            ("started", str(self.started)),
            ("deadline", str(self.deadline)),
            ("beat", str(self.beat)),
            ("holder", self.holder.replace("\n", " ")),
            ("standby", standby),
        ]
        return "".join(f"{k} {v}\n" for k, v in fields)

    @classmethod
    def parse(cls, text: str | None) -> Marker | None:
        if not text:
            return None
        f = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        try:
            standby = None
            if f.get("standby", "-") != "-":
                standby = route_state.Record.parse(f["colour"], base64.b64decode(f["standby"]).decode())
            return cls(
                colour=f["colour"],
                release=f["release"],
                version=f["version"],
                previous=f["previous"],
                previous_version="" if f.get("previous_version") == "-" else f.get("previous_version", ""),
                started=int(f["started"]),
                deadline=int(f["deadline"]),
                beat=int(f["beat"]),
                holder=f.get("holder", ""),
                standby=standby,
            )
        except (KeyError, ValueError):
            return None

    def alive(self, now: int) -> bool:
        """Whether the process that watches is still there (it renewed the beat lately)."""
        return now - self.beat <= STALE

    def left(self, now: int) -> int:
        return max(0, self.deadline - now)


@dataclass(frozen=True)
class Figures:
    requests: int
    errors: int
    slow: int  # requests slower than max_p99
    p99: float | None  # seconds, interpolated inside its bucket
    seconds: float  # the span these figures cover

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def text(self) -> str:
        p99 = f"{self.p99 * 1000:.0f} ms" if self.p99 is not None else "-"
        return (
            f"{self.requests} requests in {seconds_text(self.seconds)}, 5xx {self.error_rate:.1%}"
            f" ({self.errors}), p99 {p99}"
        )

    def record(self) -> dict:
        """For the history and the notifications."""
        return {
            "requests": self.requests,
            "errors_5xx": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p99_ms": round(self.p99 * 1000, 1) if self.p99 is not None else None,
            "slow": self.slow,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class Judgement:
    verdict: str  # ok, breach, too-few
    reasons: tuple[str, ...]
    figures: Figures


def figures(text: str, colour: str, release: str, max_p99: float, seconds: float) -> Figures:
    """The live traffic of one release in a metrics answer (Prometheus text)."""
    _, series = metrics_rule.parse(text)
    mine = [s for s in series if s.route == "live" and s.colour == colour and s.release == release]
    requests = sum(s.requests for s in mine)
    errors = sum(s.errors for s in mine)
    slow = sum(s.above(max_p99) for s in mine)
    p99 = mine[0].quantile(0.99) if len(mine) == 1 else None
    return Figures(requests, errors, slow, p99, seconds)


def judge(fig: Figures, *, max_error_rate: float, max_p99: float, min_requests: int) -> Judgement:
    if fig.requests < min_requests:
        why = f"only {fig.requests} live requests, fewer than watch.min_requests = {min_requests}"
        return Judgement("too-few", (why,), fig)
    reasons = []
    if fig.error_rate > max_error_rate:
        reasons.append(f"5xx rate {fig.error_rate:.1%} > {max_error_rate:.1%}")
    if fig.slow * 100 > fig.requests:
        reasons.append(
            f"p99 above {max_p99 * 1000:.0f} ms ({fig.slow} of {fig.requests} requests, {fig.slow / fig.requests:.1%},"
            " took longer)"
        )
    return Judgement("breach" if reasons else "ok", tuple(reasons), fig)


def tick_script(
    marker: Marker, *, own: bool, window: int | None, check: probe_rule.Probe | None, timeout: float
) -> str:
    """One exec per tick: the edge's clock (and, for the watching process, the renewed
    beat), the metrics (of the last `window` seconds, or cumulative), the route state, and
    the own check through the live route."""
    query = f"?window={int(window)}" if window else ""
    beat = (
        f"if grep -qx {shlex.quote('release ' + marker.release)} {PATH} 2>/dev/null; then"
        f' sed -i "s/^beat .*/beat $now/" {PATH}; fi'
    )
    parts = [
        "now=$(date +%s)",
        'echo "now $now"',
        beat if own else "true",
        f"echo {SEP} metrics",
        f"curl -s --max-time 5 '{probe_rule.PREVIEW}/_deployer/metrics{query}'",
        f"echo {SEP} state",
        route_state.dump_files(SEP + "-state"),
        f"echo {SEP} check",
        f"{{ {probe_rule.script([check], timeout)}; }} || true" if check else "true",
    ]
    return "\n".join(parts)


@dataclass(frozen=True)
class Tick:
    now: int
    metrics: str
    state: route_state.EdgeState
    check: str


def parse_tick(output: str) -> Tick:
    sections: dict[str, str] = {}
    head, *rest = output.split(f"{SEP} ")
    for chunk in rest:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body
    now = 0
    for line in head.splitlines():
        if line.startswith("now "):
            now = int(line.split()[1])
    files = route_state.parse_dump(sections.get("state", ""), SEP + "-state")
    return Tick(now, sections.get("metrics", ""), route_state.EdgeState.parse(files), sections.get("check", ""))
