"""The `backup` service of the infra stack dumps on schedule, and turns unhealthy when dumps stop."""

from __future__ import annotations

import json
import time

import pytest
from backup_data import seed

pytestmark = pytest.mark.docker


def _health(container) -> str:
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status", "")


def _wait(predicate, seconds: float, what: str):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}")


def test_scheduled_service_dumps_and_reports_health(project):
    # Six-field cron: every 10 seconds (the last field is seconds), so one test interval is short.
    project.write_config(extra='schedule = "* * * * * */10"\nkeep_last = 2\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n')
    project.ok("up")
    db = project.docker.containers.get(f"{project.name}-infra-db-1")
    backup = project.docker.containers.get(f"{project.name}-infra-backup-1")
    seed(db, rows=200)
    assert backup.attrs["HostConfig"]["NetworkMode"] == "none"

    def scheduled():
        rows = json.loads(project.ok("backup", "list", "--json").stdout)
        return [r for r in rows if r["label"] == "scheduled" and r["ok"]]

    _wait(lambda: len(scheduled()) >= 2, 45, "two scheduled, verified dumps")
    assert _health(backup) == "healthy"
    assert len(scheduled()) <= 3  # pruned to keep_last (plus at most one in flight)
    status = json.loads(project.ok("status", "--json").stdout)
    assert status["backup"]["verified"].startswith("verified")

    db.stop(timeout=10)  # dumps now fail: the deadline (next run + 15 s grace) passes
    _wait(lambda: _health(backup) == "unhealthy", 60, "the backup service to turn unhealthy")
    assert "not running" in backup.logs(tail=20).decode()
