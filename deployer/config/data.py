"""The [database] and [backup] tables, and the cpus and memory limits of a service or the database."""

from __future__ import annotations

import re

from deployer.config.envfile import read as read_env
from deployer.config.model import Backup, Database, Limits
from deployer.config.reader import Reader
from deployer.config.webhook import read as read_webhook
from deployer.core import durations

# A repository name as docker accepts it (lowercase path components, optional registry host:port).
IMAGE_NAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
IMAGE_REF = re.compile(IMAGE_NAME.pattern + r"(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
MEMORY = re.compile(r"[1-9][0-9]{0,6}[kmg]")


def limits(r: Reader, prefix: str) -> Limits:
    memory = r.matching(f"{prefix}.memory", MEMORY, "a memory size such as 512m or 2g") or None
    if memory and (durations.parse_size(memory) or 0) < 6 << 20:
        raise r.error(f"{prefix}.memory", f"{memory} is below Docker's minimum of 6m")
    return Limits(cpus=r.optional_number(f"{prefix}.cpus", low=0.01, high=1024, unit="CPUs"), memory=memory)


def database(r: Reader) -> Database:
    image = r.matching("database.image", IMAGE_REF, "an image reference such as my-pgvector:17") or None
    env_file = r.path("database.env_file", must_exist=True, kind="file")
    if env_file is None:
        raise r.error("database.env_file", "missing: a file with POSTGRES_USER and POSTGRES_PASSWORD")
    if r.check_paths:
        with r.files():
            values = read_env(env_file, where=r.file, key="database.env_file").values
            for key in ("POSTGRES_USER", "POSTGRES_PASSWORD"):
                if not values.get(key):
                    raise r.error("database.env_file", f"{env_file} must set {key}")
    name = r.ident("database.name", default=Database.name)
    return Database(name=name, env_file=env_file, image=image, limits=limits(r, "database"))


def backup(r: Reader) -> Backup:
    schedule = r.string("backup.schedule", default=Backup.schedule)
    if schedule != Backup.schedule:
        from deployer.core import schedule as timing  # croniter, only for a schedule of the user's own

        problem = timing.problem(schedule)
        if problem:
            raise r.error("backup.schedule", problem)
    webhook = read_webhook(r, "backup.webhook")
    keep = {
        k: r.integer(f"backup.{k}", default=getattr(Backup, k), low=0, high=10000)
        for k in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")
    }
    if keep["keep_last"] < 1:
        raise r.error("backup.keep_last", "must be at least 1")
    return Backup(
        dir=r.host_folder("backup.dir"),
        schedule=schedule,
        before_release=r.boolean("backup.before_release", default=Backup.before_release),
        webhook=webhook,
        webhook_timeout=r.number("backup.webhook_timeout", default=Backup.webhook_timeout, low=0.1, high=60),
        **keep,
    )
