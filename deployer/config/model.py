"""The config as frozen objects. Built only by `deployer.config.load`, after every check passed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BASE_IMAGE = "debian:trixie-slim"


@dataclass(frozen=True)
class Limits:
    """Optional CPU and memory limits of a container (None: no limit)."""

    cpus: float | None = None
    memory: str | None = None  # docker's notation: 512m, 2g


@dataclass(frozen=True)
class Service:
    name: str
    image: str  # repository without tag; the release version is the tag
    port: int
    health: str
    routes: tuple[str, ...] = ()  # URL prefixes the edge sends here; a worker has none
    env_file: Path | None = None
    required_env: tuple[str, ...] = ()  # keys its env file must define
    build: Path | None = None  # build context, for `deployer build` and `release --build`
    dockerfile: Path | None = None
    stop_grace: int = 30
    limits: Limits = field(default_factory=Limits)

    def image_ref(self, version: str) -> str:
        return f"{self.image}:{version}"


@dataclass(frozen=True)
class Edge:
    public_port: int = 80  # 0 lets Docker pick a free port (tests use this)
    preview_port: int = 8081  # always bound to 127.0.0.1
    public_bind: str = "0.0.0.0"
    template: Path | None = None  # your own site template instead of the shipped one
    access_log: bool = True  # one JSON line per request on the edge's stdout
    expose_colour: bool = False  # X-Deployer-Colour on public responses too
    max_body: str = "20m"
    proxy_timeout: int = 300  # seconds an app may take to answer (and a stream may stay idle)
    client_timeout: int = 15  # seconds a client may take to send headers or body
    keepalive_timeout: int = 30  # seconds an idle client connection stays open
    upstream_keepalive: int = 512  # idle pooled connections to the apps, per worker
    upstream_idle_timeout: int = 4  # seconds; keep it below the apps' own keep-alive timeout


@dataclass(frozen=True)
class Database:
    name: str
    env_file: Path  # POSTGRES_USER, POSTGRES_PASSWORD: never in argv or logs
    image: str | None = None  # None: build ours (Debian's PostgreSQL 17 with pgvector)
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Timeouts:
    health_deadline: float = 120.0
    health_interval: float = 0.1
    request_timeout: float = 2.0


@dataclass(frozen=True)
class Backup:
    # A folder of the Docker host for the dumps, as written in the config (relative paths
    # start at the config's folder, for a local engine only); None keeps them in the
    # volume <name>-dumps.
    dir: str | None = None
    schedule: str = "0 3 * * *"
    before_release: bool = True
    keep_last: int = 7
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    webhook: str | None = None
    webhook_timeout: float = 5.0


@dataclass(frozen=True)
class Engine:
    """Where the Docker engine is: None for DOCKER_HOST (or the local socket), or ssh://[user@]host[:port]."""

    host: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    name: str
    services: dict[str, Service]
    edge: Edge
    database: Database
    timeouts: Timeouts
    backup: Backup
    engine: Engine = field(default_factory=Engine)
    smoke: tuple[str, ...] = ()
    restart: str = "unless-stopped"
    base_image: str = DEFAULT_BASE_IMAGE
    # Tells this deployment from another with the same name on the same engine (written by
    # `deployer init`); "" for a config without one, which then owns only unmarked resources.
    deployment: str = ""

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def routed(self) -> list[Service]:
        return [s for s in self.services.values() if s.routes]

    def route_owner(self, path: str) -> str | None:
        """The service a request path goes to: the longest matching prefix wins, as in the edge."""
        best = max(
            ((p, s.name) for s in self.services.values() for p in s.routes if path.startswith(p)),
            key=lambda item: len(item[0]),
            default=None,
        )
        return best[1] if best else None

    def verify_paths(self) -> list[str]:
        """What the smoke checks and the live verification fetch: the smoke paths, or the
        health path of each service whose own routes reach it."""
        if self.smoke:
            return list(self.smoke)
        return [s.health for s in self.routed if self.route_owner(s.health.partition("?")[0]) == s.name]
