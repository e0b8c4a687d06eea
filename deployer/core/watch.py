"""The watch after a switch, as pure rules: the marker that makes a running watch
discoverable on the host and the script of one tick (the verdict: core/verdict.py).

The marker is the route state file `watch` (core/state.py), written when a release starts
its watch and removed when the watch ends. It names the release, the colour to switch back
to, the deadline by the edge's clock, and a beat the watching process renews on every
tick: a marker whose beat is old belongs to a process that is gone, and `deployer watch`
may take its watch over. A release refuses to start while a live watch runs. Once the
watching process measured the previous release's baseline (on its first tick, from the
minute before the switch), the marker holds it too, so that a watch taken over judges
against the same figures.

Every tick judges the last SPAN seconds (a sliding window, as Flagger's and Argo's
analyses do); the end of the window judges all of it.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

from deployer.core import edgelayout
from deployer.core import probe as probe_rule
from deployer.core import state as route_state
from deployer.core.verdict import Baseline

SPAN = 60  # seconds judged on each tick
TICK = 2.0  # seconds between ticks
STALE = 90  # a beat older than this: the watching process is gone (a rollback may take a while)
CHECK_FAILURES = 2  # the own check must fail this many ticks in a row to count as a breach
PATH = f"{edgelayout.STATE}/watch"
SEP = "@@deployer-watch@@"


@dataclass(frozen=True)
class Marker:
    """The watch's marker in the route state: what is watched, until when."""

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
    baseline: Baseline | None = None  # the previous release's figures, once measured

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
            ("baseline", self.baseline.render() if self.baseline else "-"),
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
                baseline=Baseline.parse(f.get("baseline", "-")),
            )
        except (KeyError, ValueError):
            return None

    def alive(self, now: int) -> bool:
        """Whether the process that watches is still there (it renewed the beat lately)."""
        return now - self.beat <= STALE

    def left(self, now: int) -> int:
        return max(0, self.deadline - now)


def metrics_query(window: int | None, top: int) -> str:
    """The metrics view's query: the last `window` seconds (None: cumulative), and the
    per-client figures of the `top` addresses with the most bad requests."""
    args = ([f"window={int(window)}"] if window else []) + ([f"top={int(top)}"] if top else [])
    return "?" + "&".join(args) if args else ""


def tick_script(
    marker: Marker, *, own: bool, window: int | None, top: int, check: probe_rule.Probe | None, timeout: float
) -> str:
    """One exec per tick: the edge's clock (and, for the watching process, the renewed
    beat), the metrics (of the last `window` seconds, or cumulative), the route state, and
    the own check through the live route."""
    query = metrics_query(window, top)
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
    """One reading of the watch."""

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
