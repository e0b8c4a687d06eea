"""What the backup agent (inside the `backup` container) is told: its settings as JSON.

`deployer up` renders it into the container (a compose config, so it is neither an env
variable nor a mount of a file on the CLI's machine); the agent reads it at start. The
database password and the webhook URL are not here: they are secret files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PATH = "/etc/deployer/agent.json"
DUMPS = "/backups"
SECRETS = "/run/secrets"


@dataclass(frozen=True)
class AgentConfig:
    """The backup agent's settings, passed to its container."""

    project: str
    database: str
    db_host: str
    db_user: str
    schedule: str
    keep_last: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    webhook_timeout: float
    dumps: str = DUMPS
    db_port: int = 5432
    db_sslmode: str = ""  # libpq's sslmode towards an external database ('' for the bundled one)
    external: bool = False  # the database is not a container of the deployment ([database] url_file)
    drill_schedule: str = ""  # cron (UTC) of the restore drills; '' for none
    max_lag: float = 0  # with [backup] pitr: seconds WAL archiving may lag (core/pitr.py lag); 0: not watched
    pitr_repos: int = 0  # with [backup] pitr: how many pgBackRest repositories (1, or 2 with one off the host)
    pitr_schedules: tuple[tuple[str, str], ...] = ()  # (kind, cron) of the base backups (agent/basebackup.py)

    def render(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def parse(cls, text: str) -> AgentConfig:
        data = json.loads(text)
        found = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "pitr_schedules" in found:  # JSON has lists
            found["pitr_schedules"] = tuple(tuple(pair) for pair in found["pitr_schedules"])
        return cls(**found)


def for_config(config, db_user: str, url=None) -> AgentConfig:
    """`url`: an external database's login (core/dburl.py), else the bundled container's."""
    b = config.backup
    return AgentConfig(
        project=config.name,
        database=url.database if url else config.database.name,
        db_host=url.host if url else "db",
        db_port=url.port if url else 5432,
        db_sslmode=url.sslmode if url else "",
        external=url is not None,
        db_user=db_user,
        schedule=b.schedule,
        keep_last=b.keep_last,
        keep_daily=b.keep_daily,
        keep_weekly=b.keep_weekly,
        keep_monthly=b.keep_monthly,
        webhook_timeout=b.webhook_timeout,
        drill_schedule=b.drill_schedule,
        max_lag=b.max_lag if b.pitr and url is None else 0,
        pitr_repos=(2 if b.offsite else 1) if b.pitr and url is None else 0,
        pitr_schedules=tuple(
            (kind, cron)
            for kind, cron in (
                ("full", b.pitr_full_schedule),
                ("diff", b.pitr_diff_schedule),
                ("incr", b.pitr_incr_schedule),
            )
            if cron and b.pitr and url is None
        ),
    )
