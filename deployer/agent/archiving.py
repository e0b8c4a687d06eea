"""The watch on WAL archiving ([backup] pitr): twice per max_lag (at most a minute apart)
the schedule asks the database how far its archiver lags (core/pitr.py lag). Behind by more than [backup] max_lag, it
writes the marker `.deployer-archive-behind` (which fails the container's healthcheck:
deployer/agent/probe.py) and reports the failure once (log, status, webhook); caught up,
it removes the marker. A new container judges at once, and never keeps the marker an earlier
one wrote under its own settings."""

from __future__ import annotations

import time

from deployer.agent import report
from deployer.agent.boot import Agent
from deployer.agent.postgres import Postgres
from deployer.core import pitr

STEP = "archive"
EVERY = 60  # seconds between two looks, at most


def every(max_lag: float) -> float:
    """Seconds between two looks: twice per max_lag, at most a minute apart."""
    return max(5.0, min(EVERY, max_lag / 2))


def check(agent: Agent) -> None:
    """Never raises: a database that does not answer is the dumps' concern, not this watch's."""
    if not agent.config.max_lag:
        return
    marker = agent.folder.path / pitr.BEHIND_MARKER
    try:
        with Postgres(agent.config, agent.password) as pg:
            row = pg.psql(pitr.ARCHIVER, "postgres", step=STEP)
    except Exception as exc:
        report.log(f"cannot ask the database how far WAL archiving lags: {exc}")
        return
    why = pitr.lag(row, time.time(), agent.config.max_lag)
    try:
        if why and not marker.exists():
            agent.folder.write_atomic(marker, why + "\n")
            report.failure(agent, STEP, why)
        elif not why and marker.exists():
            marker.unlink()
            report.log("WAL archiving has caught up")
    except OSError as exc:
        report.log(f"cannot write the archiving marker: {exc}")


def start(agent: Agent) -> None:
    """At the schedule's start: an earlier container's marker is removed (the healthcheck
    already ignores it), and archiving is judged at once under this container's settings."""
    try:
        (agent.folder.path / pitr.BEHIND_MARKER).unlink(missing_ok=True)
    except OSError as exc:
        report.log(f"cannot remove an earlier archiving marker: {exc}")
    check(agent)
