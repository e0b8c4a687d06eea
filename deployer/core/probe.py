"""The one probe rule. Health waits, smoke checks, a switch's check of its target and the
verification after a switch all fetch URLs from inside the edge with this one curl, and
judge each answer the same way: a 2xx or 3xx status, from the colour (and release)
expected, as the edge itself reports in X-Deployer-Colour and X-Deployer-Release.

Probing from inside the edge needs no port on the CLI's machine, so every command works
the same against a remote engine. Inside the edge:

    LIVE     the public server, as a user's request reaches it
    PREVIEW  the preview server: the colour that is not live, and /_deployer/health/...
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from deployer.core.edgelayout import PREVIEW_PORT, PUBLIC_PORT

LIVE = f"http://127.0.0.1:{PUBLIC_PORT}"
PREVIEW = f"http://127.0.0.1:{PREVIEW_PORT}"


@dataclass(frozen=True)
class Probe:
    """A URL fetched inside the edge, and the colour (and release) that must answer it."""

    url: str
    colour: str
    release: str = ""  # also require this release, when given


@dataclass(frozen=True)
class Result:
    """What one probe's URL answered."""

    code: int
    colour: str
    release: str
    url: str

    def failure(self, probe: Probe) -> str | None:
        """Why this answer does not pass the probe, or None."""
        if self.code == 0:
            return f"{self.url}: no answer"
        if not 200 <= self.code < 400:
            return f"{self.url}: HTTP {self.code}"
        if self.colour != probe.colour:
            return f"{self.url}: answered by {self.colour or 'no colour'}, expected {probe.colour}"
        if probe.release and self.release != probe.release:
            return f"{self.url}: answered by release {self.release or 'none'}, expected {probe.release}"
        return None

    def line(self) -> str:
        return f"probe {self.code} [{self.colour}] {self.url}"


def health_url(colour: str, service: str = "", release: str = "") -> str:
    """A service's own health path on a colour's current release (or on exactly that
    release); without a service, every service of it at once."""
    target = f"{colour}-{release}" if release else colour
    return f"{PREVIEW}/_deployer/health/{target}" + (f"/{service}" if service else "")


def script(probes: list[Probe], timeout: float) -> str:
    """One curl over every URL; prints `probe <code> <colour> <release> <url>` per URL and
    exits non-zero unless each answer passes."""
    if not probes:
        return "true"
    return f"curl {fetch(probes, timeout)} | {judge(probes)}"


def fetch(probes: list[Probe], timeout: float) -> str:
    """curl's arguments for the probes: one `probe <code> <colour>. <release>. <url>` line each."""
    outputs = " ".join(f"-o /dev/null {shlex.quote(p.url)}" for p in probes)
    fmt = "probe %{http_code} %header{x-deployer-colour}. %header{x-deployer-release}. %{url}\\n"
    return f"-s --max-time {timeout:g} -w '{fmt}' {outputs}"


def judge(probes: list[Probe], *, skip: int = 0) -> str:
    """awk over fetch's lines (after the first `skip` lines of its input): prints them, and
    exits non-zero unless each answer passes."""
    expected = " ".join(f"{p.colour}/{p.release or '-'}" for p in probes)
    after = f"NR > {skip} " if skip else ""
    return (
        f"awk -v want={shlex.quote(expected)} '"
        'BEGIN { n = split(want, w, " ") } '
        f"{after}"
        '{ print; i++; split(w[i], e, "/"); c = substr($3, 1, length($3) - 1); r = substr($4, 1, length($4) - 1); '
        'if ($2 < 200 || $2 >= 400 || c != e[1] || (e[2] != "-" && r != e[2])) bad = 1 } '
        "END { if (i != n) bad = 1; exit bad }'"
    )


def parse(output: str) -> list[Result]:
    results = []
    for line in output.splitlines():
        parts = line.split(" ")
        if len(parts) < 5 or parts[0] != "probe":
            continue
        try:
            code = int(parts[1])
        except ValueError:
            code = 0
        results.append(Result(code, parts[2].rstrip("."), parts[3].rstrip("."), " ".join(parts[4:])))
    return results


def failures(probes: list[Probe], output: str) -> list[str]:
    """Why the probes did not pass (empty when every one did)."""
    results = parse(output)
    problems = []
    for i, p in enumerate(probes):
        if i >= len(results):
            problems.append(f"{p.url}: no answer")
            continue
        why = results[i].failure(p)
        if why:
            problems.append(why)
    return problems


THEN = "@@then@@\n"  # in a poll's output: what follows is the `then` probes' lines


def poll_script(
    probes: list[Probe], timeout: float, *, budget: float, interval: float, then: list[Probe] | None = None
) -> str:
    """The probes, repeated inside the edge until they all pass or `budget` seconds have gone:
    at 20 ms, then doubling up to `interval` between rounds. Prints the last round's lines
    (and `ready` when they passed), so one exec covers many rounds: a release on a remote
    engine pays one round trip per second of waiting, not one per probe. Once they pass,
    the `then` probes run once in the same exec (a release's smoke check after its health
    wait), their lines after THEN."""
    once = script(probes, timeout)
    budget_ms = int(budget * 1000)
    cap_ms = max(20, int(interval * 1000))
    after = f" printf '{THEN}'; {{ {script(then, timeout)}; }} 2>&1;" if then else ""
    return "\n".join(
        [
            f"end=$(( $(date +%s%3N) + {budget_ms} )); delay=20",
            "while :; do",
            f"  out=$( {{ {once}; }} 2>&1 ) && {{ printf '%s\\n' \"$out\"; echo ready;{after} exit 0; }}",
            '  if [ "$(date +%s%3N)" -ge "$end" ]; then printf \'%s\\n\' "$out"; exit 1; fi',
            '  sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"',
            f"  delay=$((delay * 2)); [ $delay -gt {cap_ms} ] && delay={cap_ms}",
            "done",
        ]
    )


def polled(probes: list[Probe], then: list[Probe], output: str, ok: bool) -> tuple[list[str], list[str] | None]:
    """A poll's verdict: (why the probes did not pass, why the `then` probes did not: None
    when they did not run)."""
    head, mark, tail = output.partition(THEN)
    if ok and head.rstrip().endswith("ready"):
        return [], (failures(then, tail) if mark else None) if then else None
    return failures(probes, head) or ["no answer"], None


def listening_ports(proc_net_tcp: str) -> set[int]:
    """The ports in LISTEN state (0A) in the text of /proc/net/tcp and /proc/net/tcp6, but
    Docker's own DNS resolver's (127.0.0.11, in every container on a user network)."""
    ports = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1] and not fields[1].startswith("0B00007F:"):
            try:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
            except ValueError:
                continue
    return ports
