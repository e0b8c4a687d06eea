"""Load `deployer.toml` into frozen objects, validating everything up front.

Every error names the file and the key. Nothing here touches Docker, so a broken
config is always rejected before any side effect.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError

DEFAULT_FILE = "deployer.toml"
DEFAULT_SCHEDULE = "0 3 * * *"
REQUIRED_SERVICES = ("backend", "frontend")
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._/:-]*$")
SERVICE_KEYS = {"image", "port", "health", "routes", "env_file", "build", "dockerfile", "stop_grace"}


@dataclass(frozen=True)
class Service:
    name: str
    image: str  # repository without tag; the release version is the tag
    port: int
    health: str
    routes: tuple[str, ...]
    env_file: Path | None = None
    build: Path | None = None  # build context, for `deployer build` and `release --build`
    dockerfile: Path | None = None
    stop_grace: int = 30

    def image_ref(self, version: str) -> str:
        return f"{self.image}:{version}"


@dataclass(frozen=True)
class Edge:
    public_port: int = 80  # 0 lets Docker pick a free port (tests use this)
    preview_port: int = 8081  # always bound to 127.0.0.1
    public_bind: str = "0.0.0.0"
    template: Path | None = None  # your own site template instead of nginx/site.conf.j2


@dataclass(frozen=True)
class Database:
    name: str
    env_file: Path  # POSTGRES_USER, POSTGRES_PASSWORD: never in argv or logs
    image: str | None = None  # None: build ours from db/Dockerfile


@dataclass(frozen=True)
class Timeouts:
    health_deadline: float = 120.0
    health_interval: float = 0.1
    request_timeout: float = 2.0


@dataclass(frozen=True)
class Backup:
    dir: Path
    schedule: str = "0 3 * * *"  # DEFAULT_SCHEDULE
    before_release: bool = True
    keep_last: int = 7
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    webhook: str | None = None
    webhook_timeout: float = 5.0


@dataclass(frozen=True)
class Config:
    path: Path
    name: str
    services: dict[str, Service]
    edge: Edge
    database: Database
    timeouts: Timeouts
    backup: Backup
    smoke: tuple[str, ...] = ()
    restart: str = "unless-stopped"
    base_image: str = "debian:trixie-slim"

    @property
    def root(self) -> Path:
        return self.path.parent

    def project(self, colour: str) -> str:
        return f"{self.name}-{colour}"

    @property
    def infra_project(self) -> str:
        return f"{self.name}-infra"

    @property
    def edge_container(self) -> str:
        return f"{self.name}-infra-edge-1"

    @property
    def db_container(self) -> str:
        return f"{self.name}-infra-db-1"

    @property
    def networks(self) -> dict[str, bool]:
        """Network name -> internal. `data` has no route out."""
        return {f"{self.name}-edge": False, f"{self.name}-data": True}


def find(path: str | Path | None) -> Path:
    candidate = Path(path) if path else Path.cwd() / DEFAULT_FILE
    if not candidate.is_file():
        raise ConfigError(candidate, None, "config file not found (use --config PATH)")
    return candidate.resolve()


def load(path: str | Path | None = None, *, check_paths: bool = True) -> Config:
    """check_paths=False skips the existence checks of env files, build contexts and
    templates: the backup service sees only the config's folder, not the build trees."""
    file = find(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"not valid TOML: {exc}") from None
    return parse(raw, file, check_paths=check_paths)


def parse(raw: dict[str, Any], file: Path, *, check_paths: bool = True) -> Config:
    r = _Reader(raw, file, check_paths)
    known = {"project", "services", "edge", "database", "timeouts", "smoke", "backup"}
    for key in raw:
        if key not in known:
            raise ConfigError(file, key, f"unknown section (expected one of {', '.join(sorted(known))})")
    name = r.string("project.name", required=True)
    if not PROJECT_NAME.match(name):
        raise ConfigError(file, "project.name", "must be 2-32 characters of a-z, 0-9 and '-', starting with a letter")
    restart = r.string("project.restart", default="unless-stopped")
    if restart not in ("no", "always", "unless-stopped", "on-failure"):
        raise ConfigError(file, "project.restart", "must be one of no, always, unless-stopped, on-failure")
    services = _services(r)
    edge = Edge(
        public_port=r.port("edge.public_port", default=80),
        preview_port=r.port("edge.preview_port", default=8081),
        public_bind=r.string("edge.public_bind", default="0.0.0.0"),
        template=r.path("edge.template", must_exist=True),
    )
    if edge.public_port and edge.public_port == edge.preview_port:
        raise ConfigError(file, "edge.preview_port", "must differ from edge.public_port")
    db_image = r.string("database.image", default="") or None
    if db_image and not IMAGE_NAME.match(db_image):
        raise ConfigError(file, "database.image", f"not a valid image name: {db_image!r}")
    db_env = r.path("database.env_file", must_exist=True)
    if db_env is None:
        raise ConfigError(file, "database.env_file", "missing: a file with POSTGRES_USER and POSTGRES_PASSWORD")
    database = Database(name=r.ident("database.name", default="app"), env_file=db_env, image=db_image)
    timeouts = Timeouts(
        health_deadline=r.number("timeouts.health_deadline", default=120.0, low=1, high=3600),
        health_interval=r.number("timeouts.health_interval", default=0.1, low=0.05, high=60),
        request_timeout=r.number("timeouts.request_timeout", default=2.0, low=0.1, high=60),
    )
    if timeouts.health_interval >= timeouts.health_deadline:
        raise ConfigError(file, "timeouts.health_interval", "must be shorter than timeouts.health_deadline")
    backup = _backup(r)
    smoke = tuple(r.paths_list("smoke.paths", default=[]))
    r.reject_unknown()
    return Config(
        path=file,
        name=name,
        services=services,
        edge=edge,
        database=database,
        timeouts=timeouts,
        backup=backup,
        smoke=smoke,
        restart=restart,
    )


def _services(r: _Reader) -> dict[str, Service]:
    table = r.table("services")
    missing = [s for s in REQUIRED_SERVICES if s not in table]
    if missing:
        raise ConfigError(r.file, "services", f"missing [services.{missing[0]}] (backend and frontend are required)")
    extra = [s for s in table if s not in REQUIRED_SERVICES]
    if extra:
        raise ConfigError(
            r.file, f"services.{extra[0]}", "unknown service: the app stack has exactly backend and frontend"
        )
    services = {}
    for name in REQUIRED_SERVICES:
        prefix = f"services.{name}"
        for key in r.table(prefix):
            if key not in SERVICE_KEYS:
                raise ConfigError(r.file, f"{prefix}.{key}", "unknown key")
        image = r.string(f"{prefix}.image", required=True)
        if not IMAGE_NAME.match(image) or ":" in image.rsplit("/", 1)[-1]:
            raise ConfigError(r.file, f"{prefix}.image", "must be an image name without a tag (the version is the tag)")
        default_routes = ["/api/", "/actuator/"] if name == "backend" else ["/"]
        services[name] = Service(
            name=name,
            image=image,
            port=r.port(f"{prefix}.port", required=True, allow_zero=False),
            health=r.url_path(f"{prefix}.health", required=True),
            routes=tuple(r.paths_list(f"{prefix}.routes", default=default_routes)),
            env_file=r.path(f"{prefix}.env_file", must_exist=True),
            build=r.path(f"{prefix}.build", must_exist=True),
            dockerfile=r.path(f"{prefix}.dockerfile", must_exist=True),
            stop_grace=r.integer(f"{prefix}.stop_grace", default=30, low=1, high=600),
        )
    routes = [p for s in services.values() for p in s.routes]
    if len(routes) != len(set(routes)):
        raise ConfigError(r.file, "services.*.routes", "the same route is given to two services")
    return services


def _backup(r: _Reader) -> Backup:
    schedule = r.string("backup.schedule", default=DEFAULT_SCHEDULE)
    if schedule != DEFAULT_SCHEDULE:
        from croniter import croniter  # imported only for a schedule of the user's own

        if not croniter.is_valid(schedule):
            raise ConfigError(r.file, "backup.schedule", f"not a valid cron expression: {schedule!r}")
    webhook = r.string("backup.webhook", default="") or None
    if webhook and not re.match(r"^https?://", webhook):
        raise ConfigError(r.file, "backup.webhook", "must be an http:// or https:// URL")
    keep = {
        k: r.integer(f"backup.{k}", default=d, low=0, high=10000)
        for k, d in (("keep_last", 7), ("keep_daily", 7), ("keep_weekly", 4), ("keep_monthly", 6))
    }
    if keep["keep_last"] < 1:
        raise ConfigError(r.file, "backup.keep_last", "must be at least 1")
    return Backup(
        dir=r.path("backup.dir", must_exist=False) or (r.file.parent / "backups"),
        schedule=schedule,
        before_release=r.boolean("backup.before_release", default=True),
        webhook=webhook,
        webhook_timeout=r.number("backup.webhook_timeout", default=5.0, low=0.1, high=60),
        **keep,
    )


class _Reader:
    """Typed access to dotted keys; remembers which keys were read to reject unknown ones."""

    def __init__(self, raw: dict[str, Any], file: Path, check_paths: bool = True) -> None:
        self.raw = raw
        self.file = file
        self.check_paths = check_paths
        self.seen: set[str] = set()

    def _get(self, key: str) -> Any:
        node: Any = self.raw
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict):
                raise ConfigError(self.file, ".".join(parts[:i]), "must be a table")
            if part not in node:
                return None
            node = node[part]
        self.seen.add(key)
        return node

    def table(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if value is None:
            raise ConfigError(self.file, key, "missing table")
        if not isinstance(value, dict):
            raise ConfigError(self.file, key, "must be a table")
        return value

    def string(self, key: str, *, default: str | None = None, required: bool = False) -> str:
        value = self._get(key)
        if value is None:
            if required:
                raise ConfigError(self.file, key, "missing (required)")
            return default or ""
        if not isinstance(value, str):
            raise ConfigError(self.file, key, f"must be a string, not {type(value).__name__}")
        return value

    def ident(self, key: str, *, default: str) -> str:
        value = self.string(key, default=default)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", value):
            raise ConfigError(self.file, key, "must be a plain identifier (letters, digits, '_')")
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.file, key, "must be true or false")
        return value

    def number(self, key: str, *, default: float, low: float, high: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(self.file, key, "must be a number of seconds")
        if not low <= value <= high:
            raise ConfigError(self.file, key, f"must be between {low:g} and {high:g}")
        return float(value)

    def integer(self, key: str, *, default: int, low: int, high: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.file, key, "must be a whole number")
        if not low <= value <= high:
            raise ConfigError(self.file, key, f"must be between {low} and {high}")
        return value

    def port(self, key: str, *, default: int = 0, required: bool = False, allow_zero: bool = True) -> int:
        if required and self._get(key) is None:
            raise ConfigError(self.file, key, "missing (required)")
        value = self.integer(key, default=default, low=0, high=65535)
        if value == 0 and not allow_zero:
            raise ConfigError(self.file, key, "must be a port between 1 and 65535")
        return value

    def url_path(self, key: str, *, required: bool = False, default: str = "/") -> str:
        value = self.string(key, required=required, default=default)
        if not re.match(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$", value):
            raise ConfigError(self.file, key, f"must be a URL path starting with '/': {value!r}")
        return value

    def paths_list(self, key: str, *, default: list[str]) -> list[str]:
        value = self._get(key)
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.file, key, "must be a list of strings")
        for v in value:
            if not re.match(r"^/[A-Za-z0-9._~/-]*$", v):
                raise ConfigError(self.file, key, f"not a plain URL path: {v!r}")
        return value

    def path(self, key: str, *, must_exist: bool) -> Path | None:
        value = self.string(key, default="")
        if not value:
            return None
        resolved = (self.file.parent / value).resolve()
        if must_exist and self.check_paths and not resolved.exists():
            raise ConfigError(self.file, key, f"{value} does not exist (relative paths start at the config's folder)")
        return resolved

    def reject_unknown(self) -> None:
        for section, body in self.raw.items():
            if section == "services" or not isinstance(body, dict):
                continue
            for key in body:
                if f"{section}.{key}" not in self.seen:
                    raise ConfigError(self.file, f"{section}.{key}", "unknown key")
