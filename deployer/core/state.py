"""The edge's route state: the one persistent truth of what serves.

Three small files in the edge volume (`state/`), each replaced whole by an atomic rename:

    live          one word: the live colour (empty before the first switch)
    blue, green   the colour's current release, one fact per line:
                      release 1a2b3c4d
                      version v1.2
                      service <name> <host> <port> <health path>
                      route <prefix> <service>
                      inflight <service> <n>   (services.*.max_in_flight, when set)
                      strip <service>          (services.*.strip_prefix)
    maintenance   present while maintenance mode is on: the 503 page's message and
                  Retry-After (core/maintenance.py); the public route answers with it
    watch         present while a release is watched after its switch: its colour,
                  release, deadline and rollback target (core/watch.py); the edge's Lua
                  does not read it
    pending       present while a release runs: its colour, id and version, and the
                  colour's previous route state, so that whoever finds it after the
                  release's process was killed can put that back (see Pending)

A release writes the idle colour's file (the preview then shows the new release) and a
switch writes `live`, so every change is one rename of one file. This module is the only
place that writes the grammar; the edge's Lua (lua/deployer/state.lua) is the only
other place that reads it. The preview is always the colour that is not live.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from deployer.core.edgelayout import STATE
from deployer.core.names import COLOURS, RELEASE_ID, service_host

TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class Target:
    """Where one service of a release answers."""

    service: str
    host: str
    port: int
    health: str


@dataclass(frozen=True)
class Record:
    """A colour's current release, as the edge routes to it."""

    colour: str
    release: str
    version: str
    targets: tuple[Target, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (prefix, service)
    inflight: tuple[tuple[str, int], ...] = ()  # (service, its cap of public requests at once)
    strip: tuple[str, ...] = ()  # services whose route prefix the edge takes off the path

    def render(self) -> str:
        lines = [("release", self.release), ("version", self.version)]
        lines += [("service", t.service, t.host, str(t.port), t.health) for t in self.targets]
        lines += [("route", prefix, service) for prefix, service in self.routes]
        lines += [("inflight", service, str(cap)) for service, cap in self.inflight]
        lines += [("strip", service) for service in self.strip]
        for tokens in lines:
            for token in tokens:
                if not TOKEN.fullmatch(token):
                    raise ValueError(f"a route state value cannot be empty or hold white space: {token!r}")
        return "".join(" ".join(tokens) + "\n" for tokens in lines)

    @classmethod
    def parse(cls, colour: str, text: str) -> Record | None:
        release = version = ""
        targets: list[Target] = []
        routes: list[tuple[str, str]] = []
        inflight: list[tuple[str, int]] = []
        strip: list[str] = []
        for line in text.splitlines():
            kind, _, rest = line.strip().partition(" ")
            parts = rest.split()
            if kind == "release" and len(parts) == 1 and RELEASE_ID.fullmatch(parts[0]):
                release = parts[0]
            elif kind == "version" and len(parts) == 1:
                version = parts[0]
            elif kind == "service" and len(parts) == 4 and parts[2].isdigit():
                targets.append(Target(parts[0], parts[1], int(parts[2]), parts[3]))
            elif kind == "route" and len(parts) == 2:
                routes.append((parts[0], parts[1]))
            elif kind == "inflight" and len(parts) == 2 and parts[1].isdigit():
                inflight.append((parts[0], int(parts[1])))
            elif kind == "strip" and len(parts) == 1:
                strip.append(parts[0])
        if not release:
            return None
        return cls(colour, release, version, tuple(targets), tuple(routes), tuple(inflight), tuple(strip))

    @property
    def services(self) -> list[str]:
        return [t.service for t in self.targets]


def record_for(config, colour: str, release_id: str, version: str) -> Record:
    """The route state of one release, from the config that started it."""
    targets = tuple(
        Target(s.name, service_host(s.name, colour, release_id), s.port, s.health) for s in config.services.values()
    )
    routes = tuple((prefix, s.name) for s in config.services.values() for prefix in s.routes)
    inflight = tuple((s.name, s.max_in_flight) for s in config.services.values() if s.max_in_flight)
    strip = tuple(s.name for s in config.services.values() if s.strip_prefix and s.routes)
    return Record(colour, release_id, version, targets, routes, inflight, strip)


@dataclass(frozen=True)
class Pending:
    """A release that has started and not finished: what to undo if its process is gone."""

    colour: str
    release: str
    version: str
    previous: Record | None  # the colour's route state before the release

    def render(self) -> str:
        previous = base64.b64encode(self.previous.render().encode()).decode() if self.previous else "-"
        return f"colour {self.colour}\nrelease {self.release}\nversion {self.version}\nprevious {previous}\n"

    @classmethod
    def parse(cls, text: str | None) -> Pending | None:
        if not text:
            return None
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        colour, release = fields.get("colour", ""), fields.get("release", "")
        if colour not in COLOURS or not RELEASE_ID.fullmatch(release):
            return None
        raw = fields.get("previous", "-")
        previous = None
        if raw != "-":
            try:
                previous = Record.parse(colour, base64.b64decode(raw).decode())
            except ValueError:
                previous = None
        return cls(colour, release, fields.get("version", ""), previous)


@dataclass(frozen=True)
class EdgeState:
    """The route state: the live colour, each colour's release, and the marks in use."""

    live: str = ""
    records: dict[str, Record | None] = field(default_factory=dict)
    maintenance: str | None = None
    pending: Pending | None = None
    watch: str | None = None  # the watch marker's text (core/watch.py parses it)

    @property
    def preview(self) -> str:
        """The colour that is not live, when it has a release (blue first, before any switch)."""
        for colour in COLOURS:
            if colour != self.live and self.records.get(colour):
                return colour
        return ""

    def record(self, colour: str) -> Record | None:
        return self.records.get(colour)

    @property
    def live_record(self) -> Record | None:
        return self.records.get(self.live) if self.live else None

    def serves(self, colour: str, release_id: str) -> bool:
        """Whether live traffic goes to this release."""
        rec = self.live_record
        return bool(rec and rec.colour == colour and rec.release == release_id)

    @classmethod
    def parse(cls, files: dict[str, str | None]) -> EdgeState:
        """From the files' texts (None for a missing file)."""
        live = (files.get("live") or "").strip()
        records = {c: Record.parse(c, files.get(c) or "") for c in COLOURS}
        if live not in COLOURS or records.get(live) is None:
            live = ""
        maintenance = files.get("maintenance")
        return cls(live, records, maintenance, Pending.parse(files.get("pending")), files.get("watch"))


def dump_files(separator: str) -> str:
    """A shell snippet that prints each state file after a separator line (for EdgeState.parse)."""
    names = ("live", *COLOURS, "maintenance", "pending", "watch")
    return "; ".join(
        f"printf '{separator} {n}\\n'; cat {STATE}/{n} 2>/dev/null || printf '{separator} missing\\n'" for n in names
    )


def parse_dump(text: str, separator: str) -> dict[str, str | None]:
    files: dict[str, str | None] = {}
    current: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        if current is not None:
            files[current] = "".join(buffer)

    for line in text.splitlines(keepends=True):
        if line.startswith(separator + " "):
            word = line[len(separator) + 1 :].strip()
            if word == "missing":
                files[current or ""] = None
                current, buffer = None, []
                continue
            flush()
            current, buffer = word, []
        elif current is not None:
            buffer.append(line)
    flush()
    return files
