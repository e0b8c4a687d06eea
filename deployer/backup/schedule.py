"""The backup schedule: when the next dump is due (pure) and the loop the `backup` service runs.

The service's healthcheck reads a deadline file: the epoch second by which a newer successful
dump must exist. It is derived from the newest dump in the catalogue (the host's truth), or from
the service's start when there is none yet: next scheduled time after that + a grace period.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

DEADLINE_FILE = Path(os.environ.get("DEPLOYER_BACKUP_DEADLINE_FILE", "/tmp/deployer-backup.deadline"))


def next_run(expr: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(expr, after).get_next(datetime)


def period(expr: str, at: datetime) -> timedelta:
    first = next_run(expr, at)
    return next_run(expr, first) - first


def grace(expr: str, at: datetime) -> timedelta:
    """Time a dump may take before it counts as missed: half a period, between 15 s and 1 h."""
    return min(max(period(expr, at) / 2, timedelta(seconds=15)), timedelta(hours=1))


def deadline(expr: str, last_success: datetime | None, started: datetime) -> datetime:
    reference = max(last_success, started) if last_success else started
    return next_run(expr, reference) + grace(expr, reference)


def overdue(expr: str, last_success: datetime | None, started: datetime, now: datetime) -> bool:
    return now > deadline(expr, last_success, started)


def _write_deadline(at: datetime) -> None:
    tmp = DEADLINE_FILE.with_name(DEADLINE_FILE.name + ".tmp")
    tmp.write_text(f"{int(at.timestamp())}\n")
    os.replace(tmp, DEADLINE_FILE)


def _log(message: str) -> None:
    print(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {message}", file=sys.stderr, flush=True)


def run_forever(config_path: str) -> None:
    """Dump, verify and prune at every scheduled time. Reloads the config each time."""
    from deployer import config as config_mod
    from deployer.backup import catalogue, service
    from deployer.errors import DeployerError

    # PID 1 in its container: without a handler SIGTERM is ignored and `docker stop`
    # waits out the grace period. A dump cut short removes its partial file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = datetime.now(timezone.utc)
    cfg = config_mod.load(config_path, check_paths=False)
    _log(f"backup schedule {cfg.backup.schedule!r} for {cfg.name}, dumps in {cfg.backup.dir}")
    while True:
        newest = catalogue.newest_verified(catalogue.folder_of(cfg))
        _write_deadline(deadline(cfg.backup.schedule, newest.created_at if newest else None, started))
        due = next_run(cfg.backup.schedule, datetime.now(timezone.utc))
        time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
        try:
            cfg = config_mod.load(config_path, check_paths=False)
            name = service.take(cfg, label="scheduled", verify=True, step="scheduled backup", say=_log)
            _log(f"dump {name} written and verified")
            service.prune(cfg, dry_run=False, say=_log)
        except DeployerError as exc:
            _log(f"ERROR ({type(exc).__name__}): {exc}")
