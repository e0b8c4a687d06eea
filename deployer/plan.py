"""The pure core of a release: input checks, colour choice and the route state.

Nothing here does I/O, so every rule is unit tested without Docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployer.errors import InputError

COLOURS = ("blue", "green")
VERSION = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
HOST = re.compile(r"^(blue|green)(-[0-9a-f]{8})?$")
RELEASE_ID = re.compile(r"^[0-9a-f]{8}$")


def check_version(version: str) -> str:
    if not VERSION.match(version or ""):
        raise InputError(
            f"invalid version {version!r}: use 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
        )
    if version in (".", ".."):
        raise InputError(f"invalid version {version!r}")
    return version


def check_colour(colour: str) -> str:
    if colour not in COLOURS:
        raise InputError(f"unknown colour {colour!r}: use blue or green")
    return colour


def other(colour: str) -> str:
    return COLOURS[1 - COLOURS.index(check_colour(colour))]


def host(colour: str, release_id: str) -> str:
    """The host suffix of one release of a colour: its containers answer to <service>-<host>."""
    return f"{colour}-{release_id}" if RELEASE_ID.match(release_id or "") else colour


def health_urls(base: str, target_host: str, services: dict) -> list[str]:
    """Each service's health path on one release of a colour, through the edge's preview
    server (/_deployer/<host>/<service>/...), which bypasses the routes."""
    return [f"{base}/_deployer/{target_host}/{s.name}{s.health}" for s in services.values()]


@dataclass(frozen=True)
class Routes:
    """Which colour the edge sends live and preview traffic to ('' for none), and the
    host suffix of that colour's current release (see `host`).

    This is the runtime state the edge reads on every request, and the one
    persistent truth of which colour is live.
    """

    live: str = ""
    preview: str = ""
    live_host: str = ""
    preview_host: str = ""

    def render(self) -> str:
        text = f"live={self.live}\npreview={self.preview}\n"
        for key in ("live_host", "preview_host"):
            if getattr(self, key):
                text += f"{key}={getattr(self, key)}\n"
        return text

    @classmethod
    def parse(cls, text: str) -> Routes:
        values = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            value = value.strip()
            if sep and key in ("live", "preview"):
                values[key] = value if value in COLOURS else ""
            elif sep and key in ("live_host", "preview_host"):
                values[key] = value if HOST.match(value) else ""
        return cls(**values)


@dataclass(frozen=True)
class ReleasePlan:
    version: str
    live: str  # '' on the first release
    idle: str


def plan_release(version: str, routes: Routes) -> ReleasePlan:
    """The idle colour is the one that is not live; the first release goes to blue."""
    check_version(version)
    idle = other(routes.live) if routes.live else COLOURS[0]
    return ReleasePlan(version=version, live=routes.live, idle=idle)
