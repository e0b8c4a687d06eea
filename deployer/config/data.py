"""The [database] and [backup] tables, and the cpus and memory limits of a service or the database."""

from __future__ import annotations

import re
from pathlib import Path

from deployer.config.envfile import read as read_env
from deployer.config.envfile import read_mode_checked, register_secrets
from deployer.config.model import Backup, Database, Limits, Offsite
from deployer.config.reader import Reader
from deployer.config.webhook import read as read_webhook
from deployer.core import dburl, durations
from deployer.errors import ConfigError

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


def database(r: Reader, mode: str = "compose") -> Database:
    url_file = r.path("database.url_file", must_exist=True, kind="file")
    if url_file is not None:
        return _external(r, url_file, mode)
    image = r.matching("database.image", IMAGE_REF, "an image reference such as my-pgvector:17") or None
    env_file = r.path("database.env_file", must_exist=True, kind="file")
    if env_file is None:
        raise r.error(
            "database.env_file",
            "missing: a file with POSTGRES_USER and POSTGRES_PASSWORD (or url_file: an external one)",
        )
    if r.check_paths:
        with r.files():
            values = read_env(env_file, where=r.file, key="database.env_file").values
            for key in ("POSTGRES_USER", "POSTGRES_PASSWORD"):
                if not values.get(key):
                    raise r.error("database.env_file", f"{env_file} must set {key}")
    name = r.ident("database.name", default=Database.name)
    return Database(name=name, env_file=env_file, image=image, limits=limits(r, "database"))


BUNDLED_ONLY = ("env_file", "image", "cpus", "memory")  # keys of the database container the deployer runs


def _external(r: Reader, url_file, mode: str) -> Database:
    """[database] url_file: an external PostgreSQL, so no database container and none of its keys."""
    for key in BUNDLED_ONLY:
        if r.get(f"database.{key}") is not None:
            raise r.error(
                f"database.{key}",
                "is a setting of the database container, and url_file names an external database: remove one",
            )
    if mode == "swarm":
        raise r.error("database.url_file", "an external database is not supported on a swarm yet (one host only)")
    name = r.ident("database.name", default=Database.name)
    if not r.check_paths:  # a command that reads no secret file still learns the database's name
        try:
            return Database(name=read_url(url_file, where=r.file).database, env_file=None, url_file=url_file)
        except ConfigError:
            return Database(name=name, env_file=None, url_file=url_file)
    with r.files():
        url = read_url(url_file, where=r.file)
        if r.get("database.name") is not None and name != url.database:
            raise r.error("database.name", f"is {name!r} but url_file names the database {url.database!r}")
        name = url.database
    return Database(name=name, env_file=None, url_file=url_file)


def read_url(path, *, where: object, key: str = "database.url_file") -> dburl.DbUrl:
    """The external database's login, from its file: the file's owner and mode are checked as an
    env file's, and the password is masked in all output from here on."""
    text = read_mode_checked(path, where=where, key=key)
    try:
        url = dburl.parse(text)
    except ValueError as exc:
        raise ConfigError(where, key, f"{path} {exc}") from None
    register_secrets({"PASSWORD": url.password})
    return url


def backup(r: Reader, mode: str = "compose", *, external: bool = False) -> Backup:
    schedule = r.string("backup.schedule", default=Backup.schedule)
    if schedule != Backup.schedule:
        from deployer.core import schedule as timing  # croniter, only for a schedule of the user's own

        problem = timing.problem(schedule)
        if problem:
            raise r.error("backup.schedule", problem)
    crons = {}
    for key in ("drill_schedule", "pitr_full_schedule", "pitr_diff_schedule", "pitr_incr_schedule"):
        crons[key] = r.string(f"backup.{key}", default=getattr(Backup, key))  # "": none
        if crons[key] and crons[key] != getattr(Backup, key):
            from deployer.core import schedule as timing

            problem = timing.problem(crons[key])
            if problem:
                raise r.error(f"backup.{key}", problem)
    webhook = read_webhook(r, "backup.webhook")
    keep = {
        k: r.integer(f"backup.{k}", default=getattr(Backup, k), low=0, high=10000)
        for k in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")
    }
    if keep["keep_last"] < 1:
        raise r.error("backup.keep_last", "must be at least 1")
    pitr = r.boolean("backup.pitr", default=Backup.pitr)
    if pitr and (mode == "swarm" or external):
        where = "on a swarm" if mode == "swarm" else "for an external database ([database] url_file)"
        raise r.error("backup.pitr", f"point-in-time recovery is not supported {where} yet")
    for kind in ("sftp", "s3"):
        if r.get(f"backup.{kind}") is not None and not pitr:
            raise r.error(f"backup.{kind}", "a second pgBackRest repository needs backup.pitr = true")
    offsite = _offsite(r)
    return Backup(
        offsite=offsite,
        dir=r.host_folder("backup.dir"),
        schedule=schedule,
        before_release=r.boolean("backup.before_release", default=Backup.before_release),
        webhook=webhook,
        webhook_timeout=r.number("backup.webhook_timeout", default=Backup.webhook_timeout, low=0.1, high=60),
        **crons,
        pitr=pitr,
        max_lag=r.number("backup.max_lag", default=Backup.max_lag, low=10, high=7 * 86400),
        pitr_full_keep=r.integer("backup.pitr_full_keep", default=Backup.pitr_full_keep, low=1, high=1000),
        **keep,
    )


HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
REPO_PATH = re.compile(r"^/[A-Za-z0-9._/-]{0,254}$")
USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def _offsite(r: Reader) -> Offsite | None:
    """[backup.sftp] or [backup.s3]: pgBackRest's second repository, off the host."""
    kinds = [k for k in ("sftp", "s3") if r.get(f"backup.{k}") is not None]
    if not kinds:
        return None
    if len(kinds) > 1:
        raise r.error("backup.s3", "one second repository: [backup.sftp] or [backup.s3], not both")
    kind = kinds[0]
    r.table(f"backup.{kind}")
    path = r.matching(f"backup.{kind}.path", REPO_PATH, "an absolute path", default=Offsite.path)
    if kind == "sftp":
        return Offsite(
            kind=kind,
            path=path,
            host=r.matching("backup.sftp.host", HOST, "a host name or address", required=True),
            port=r.port("backup.sftp.port", default=Offsite.port, allow_zero=False),
            user=r.matching("backup.sftp.user", USER, "a user name", default=Offsite.user),
            key_file=_secret_file(r, "backup.sftp.key_file"),
            known_hosts=_secret_file(r, "backup.sftp.known_hosts"),
        )
    return Offsite(
        kind=kind,
        path=path,
        host=r.matching("backup.s3.endpoint", HOST, "a host name", required=True),
        bucket=r.matching("backup.s3.bucket", HOST, "a bucket name", required=True),
        region=r.matching("backup.s3.region", HOST, "a region name", required=True),
        credentials_file=_secret_file(r, "backup.s3.credentials_file"),
    )


def _secret_file(r: Reader, key: str) -> Path:
    found = r.path(key, must_exist=True, kind="file")
    if found is None:
        raise r.error(key, "missing: a file (chmod 600)")
    return found
