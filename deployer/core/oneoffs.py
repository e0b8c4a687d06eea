"""The rules of one-off containers: a release's migration, the scratch database of a restore
check, the throwaway edge that runs `nginx -t` on a new site.

Each is labelled (role `oneoff`, its kind, the deployment, who started it, and the seconds
its own command gives it) because it can outlive that command: a SIGKILL (kill -9, a CI
runner that vanished, a dropped ssh connection with the engine's socket forwarded) runs no
`finally`, and a migration keeps writing to the database with nobody left to judge it or
to remove it. The next command decides what to do with what it finds here: pure, from the
labels and the engine's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deployer.core import names

ROLE = "oneoff"
MIGRATE, SCRATCH, SITE_CHECK = "migrate", "scratch", "site-check"
# Roles of one-offs labelled before the kind existed: the role was the kind.
LEGACY_ROLES = (MIGRATE, SCRATCH)
ROLES = (ROLE, *LEGACY_ROLES)
WHAT = {
    MIGRATE: "the migration of {service}",
    SCRATCH: "a restore check's scratch database",
    SITE_CHECK: "a site check",
}

REMOVE, STOP, WAIT, LEAVE = "remove", "stop", "wait", "leave"


def labels(
    project: str, deployment: str, kind: str, *, by: str, timeout: float, **extra: str
) -> dict[str, str]:  # fmt: skip
    """The labels of a one-off; `extra` adds the release, version and service of a migration."""
    return {
        names.LABEL_PROJECT: project,
        names.LABEL_DEPLOYMENT: deployment,
        names.LABEL_ROLE: ROLE,
        names.LABEL_KIND: kind,
        names.LABEL_BY: by,
        names.LABEL_TIMEOUT: str(int(timeout)),
        **extra,
    }


@dataclass(frozen=True)
class OneOff:
    """A one-off container, as its labels and the engine describe it."""

    name: str
    kind: str
    running: bool
    age: float  # seconds since it started, by the engine's clock (0 when it never started)
    timeout: float  # what its own command gave it
    by: str
    service: str = ""
    release: str = ""
    version: str = ""

    @property
    def left(self) -> float:
        """Seconds until its own command would have stopped it."""
        return max(0.0, self.timeout - self.age)

    def describe(self) -> str:
        what = WHAT.get(self.kind, f"a one-off ({self.kind or 'unknown kind'})").format(service=self.service or "?")
        release = f" of release {self.release} ({self.version})" if self.release else ""
        by = f", started by {self.by}" if self.by else ""
        return f"{self.name} ({what}{release}{by})"


def parse(
    name: str, labels_: dict[str, str], *, running: bool, started_at: str, now: float, default_timeout: float
) -> OneOff:  # fmt: skip
    """A one-off as its labels and state tell it. `started_at`: the engine's StartedAt;
    `now`: the engine's clock (epoch seconds); a legacy one without a timeout gets
    `default_timeout`."""
    role = labels_.get(names.LABEL_ROLE, "")
    kind = labels_.get(names.LABEL_KIND) or (role if role in LEGACY_ROLES else "")
    try:
        timeout = float(labels_[names.LABEL_TIMEOUT])
    except (KeyError, ValueError):
        timeout = default_timeout
    return OneOff(
        name=name,
        kind=kind,
        running=running,
        age=max(0.0, now - epoch(started_at)) if running else 0.0,
        timeout=timeout,
        by=labels_.get(names.LABEL_BY, ""),
        service=labels_.get(names.LABEL_SERVICE, ""),
        release=labels_.get(names.LABEL_RELEASE, ""),
        version=labels_.get(names.LABEL_VERSION, ""),
    )


def epoch(stamp: str) -> float:
    """The engine's RFC 3339 time (nanoseconds, `Z`) as epoch seconds; 0 when there is none."""
    if not stamp or stamp.startswith("0001-"):
        return 0.0
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


def decide(one: OneOff, *, wait_for: tuple[str, ...], stop_all: bool = False) -> str:
    """What the next command does with a one-off it finds:

    remove  it ended (or never started): nobody needs it any more
    stop    it runs past the time its own command gave it: stopped and removed, as that
            command would have done (a migration past migrate_timeout)
    wait    it runs, within its time, and is of a kind the command must not run beside (a
            migration, for a release): wait for it, at most until its time is up
    leave   it runs within its time and does not get in the way (the scratch database of a
            restore check that may still be running)

    `stop_all` (down): what is left is stopped too."""
    if not one.running:
        return REMOVE
    if one.left <= 0:
        return STOP
    if one.kind in wait_for:
        return WAIT
    return STOP if stop_all else LEAVE
