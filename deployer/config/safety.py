"""Release safety settings, checked before any side effect (exit 2, naming the key):

    [watch]             the watch after the switch: window, mode and thresholds
    [notify]            a webhook (Slack-compatible JSON) and/or a hook command
    [disk]              old release images to keep, the free-space warning
    services.*.migrate  the migration command of a release (a list: argv, never a shell line)
    services.*.migrate_timeout
    services.*.db_login the env file keys that hold the service's database login

`[notify] webhook` also serves the backup agent when `backup.webhook` is not set: one URL
for every event. The URL is a secret: masked everywhere, never in an argv, a label or the
history.
"""

from __future__ import annotations

import dataclasses

from deployer.config.envfile import read as read_env
from deployer.config.model import Backup, DbLogin, Disk, Notify, Service, Watch
from deployer.config.reader import Reader
from deployer.config.webhook import read as read_webhook
from deployer.core.durations import parse_duration, parse_size

SECTIONS = ("watch", "notify", "disk")
SERVICE_KEYS = {"migrate", "migrate_timeout", "db_login"}
DB_LOGIN_KEYS = ("user", "password", "url")


def read(r: Reader, services: dict[str, Service], backup: Backup) -> tuple[dict[str, Service], Backup, dict]:
    """(services with their release-safety keys, backup with the shared webhook, and the
    Config fields watch/notify/disk)."""
    services = {name: _service(r, s) for name, s in services.items()}
    notify = _notify(r)
    if notify.webhook and not backup.webhook:
        backup = dataclasses.replace(backup, webhook=notify.webhook)
    return services, backup, {"watch": _watch(r), "notify": notify, "disk": _disk(r)}


def duration(r: Reader, key: str, *, default: float, low: float, high: float) -> float:
    """A duration: "90s", "3m", "500ms", "1h", or a number of seconds."""
    value = r.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise r.error(key, 'must be a duration such as "90s", "3m" or "500ms"')
    seconds = parse_duration(value)
    if seconds is None:
        raise r.error(key, f'must be a duration such as "90s", "3m" or "500ms": {value!r}')
    if not low <= seconds <= high:
        raise r.error(key, f"must be between {low:g}s and {high:g}s")
    return seconds


def _watch(r: Reader) -> Watch:
    window = r.get("watch.window")
    seconds = duration(r, "watch.window", default=Watch.window, low=0, high=3600)
    if window is not None and 0 < seconds < 10:
        raise r.error("watch.window", "must be 0 (no watch) or at least 10s")
    rate = r.number("watch.max_error_rate", default=Watch.max_error_rate, low=0, high=1, unit="(a share, 0-1)")
    p99 = r.get("watch.max_p99")
    max_p99 = duration(r, "watch.max_p99", default=Watch.max_p99, low=0, high=30)
    if p99 is not None and not 0.001 <= max_p99 <= 30:
        raise r.error("watch.max_p99", "must be between 1ms and 30s")
    check = r.url_path("watch.check", default="") if r.get("watch.check") is not None else None
    mode = r.string("watch.mode", default=Watch.mode)
    if mode not in ("relative", "absolute"):
        raise r.error("watch.mode", f'must be "relative" or "absolute": {mode!r}')
    return Watch(
        window=seconds,
        max_error_rate=rate,
        max_p99=max_p99,
        min_requests=r.integer("watch.min_requests", default=Watch.min_requests, low=1, high=1_000_000),
        check=check or None,
        mode=mode,
        error_margin=r.number("watch.error_margin", default=Watch.error_margin, low=0, high=1, unit="(a share, 0-1)"),
        p99_factor=r.number("watch.p99_factor", default=Watch.p99_factor, low=1, high=100, unit="(a factor, 1-100)"),
        p99_floor=duration(r, "watch.p99_floor", default=Watch.p99_floor, low=0.1, high=30),
        min_clients=r.integer("watch.min_clients", default=Watch.min_clients, low=1, high=100),
    )


def _notify(r: Reader) -> Notify:
    webhook = read_webhook(r, "notify.webhook")
    command = _argv(r, "notify.command")
    return Notify(
        webhook=webhook,
        command=command,
        timeout=r.number("notify.timeout", default=Notify.timeout, low=0.1, high=60),
    )


def _disk(r: Reader) -> Disk:
    raw = r.string("disk.min_free", default="")
    given = r.get("disk.min_free") is not None
    # A unit is required: "1.5" is far more likely 1.5 GB meant than 1 byte.
    unit = raw.strip() == "0" or raw.strip()[-1:].lower() in ("k", "m", "g", "t", "b")
    min_free = parse_size(raw) if given and unit else (None if given else Disk.min_free)
    if min_free is None:
        raise r.error("disk.min_free", f'must be a size with its unit, such as "2g" or "500m" (or "0"): {raw!r}')
    return Disk(
        keep_versions=r.integer("disk.keep_versions", default=Disk.keep_versions, low=1, high=1000),
        prune_after_release=r.boolean("disk.prune_after_release", default=Disk.prune_after_release),
        min_free=min_free,
    )


def _argv(r: Reader, key: str) -> tuple[str, ...]:
    """A command as a list of strings (argv): a string would need a shell to split it."""
    value = r.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise r.error(key, 'must be a list of strings, such as ["./migrate", "--apply"] (not one shell string)')
    if any(any(ord(c) < 32 and c not in "\t" for c in v) for v in value):
        raise r.error(key, "must not contain control characters")
    return tuple(value)


def _service(r: Reader, service: Service) -> Service:
    prefix = f"services.{service.name}"
    migrate = _argv(r, f"{prefix}.migrate")
    timeout = r.integer(f"{prefix}.migrate_timeout", default=Service.migrate_timeout, low=1, high=86400)
    if r.get(f"{prefix}.migrate_timeout") is not None and not migrate:
        raise r.error(f"{prefix}.migrate_timeout", f"set, but {prefix}.migrate is not: there is no migration to time")
    return dataclasses.replace(service, migrate=migrate, migrate_timeout=timeout, db_login=_db_login(r, service))


def _db_login(r: Reader, service: Service) -> DbLogin | None:
    key = f"services.{service.name}.db_login"
    table = r.get(key)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise r.error(key, 'must be a table such as { user = "DB_USER", password = "DB_PASSWORD" } or { url = "..." }')
    for k in table:
        r.get(f"{key}.{k}")
        if k not in DB_LOGIN_KEYS:
            raise r.error(f"{key}.{k}", "unknown key (db_login takes user and password, or url)")
    names = {k: r.string(f"{key}.{k}") for k in DB_LOGIN_KEYS if k in table}
    if not (set(names) == {"user", "password"} or set(names) == {"url"}):
        raise r.error(key, "name either user and password, or url (the env file keys that hold them)")
    if service.env_file is None:
        raise r.error(key, f"needs services.{service.name}.env_file, which holds these keys")
    if r.check_paths:
        with r.files():
            values = read_env(service.env_file, where=r.file, key=f"services.{service.name}.env_file").values
            for k, env_key in names.items():
                if env_key not in values:
                    raise r.error(f"{key}.{k}", f"{env_key} is not defined in {service.env_file}")
    return DbLogin(user=names.get("user", ""), password=names.get("password", ""), url=names.get("url", ""))
