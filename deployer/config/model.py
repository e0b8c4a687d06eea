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
    """[services.<name>]: one of the app's services, run in each colour."""

    name: str
    image: str  # repository without tag; the release version is the tag
    port: int
    health: str
    routes: tuple[str, ...] = ()  # URL prefixes the edge sends here; a worker has none
    env_file: Path | None = None
    required_env: tuple[str, ...] = ()  # keys its env file must define
    build: Path | None = None  # build context, for `deployer build` and `release --build`
    dockerfile: Path | None = None
    build_args: tuple[tuple[str, str], ...] = ()  # --build-arg NAME=value; BASE_IMAGE overrides the default
    stop_grace: int = 30
    max_in_flight: int | None = None  # public requests at once to one colour of it (None: no cap)
    # The edge takes the matched route prefix off the path before the app sees it (/api/items
    # reaches an app that serves /items), and says what it took in X-Forwarded-Prefix.
    strip_prefix: bool = False
    limits: Limits = field(default_factory=Limits)
    secrets: tuple[str, ...] = ()  # env file keys delivered as files under /run/secrets, not as env
    replicas: int = 1  # swarm mode: containers of this service per release (deployer/config/swarm.py)
    placement: tuple[str, ...] = ()  # swarm mode: placement constraints, such as "node.labels.tier == app"
    migrate: tuple[str, ...] = ()  # the release's migration command (argv), run before it starts
    migrate_timeout: int = 600  # seconds
    db_login: DbLogin | None = None  # env file keys of its database login, checked before a release

    def image_ref(self, version: str) -> str:
        return f"{self.image}:{version}"


# Security headers the edge adds to every public answer that does not carry its own
# (edge.headers changes, adds or removes them; "" removes one).
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
)


@dataclass(frozen=True)
class Tls:
    """[edge.tls]: HTTPS at the edge. The files are on the CLI's machine; `deployer up` and
    `deployer edge reload` upload them into the edge's volume."""

    cert: Path  # PEM: the certificate, then its chain
    key: Path  # PEM, unencrypted, not readable by other users
    port: int = 443  # published HTTPS port (0: Docker picks one)
    redirect: bool = True  # plain HTTP answers with a redirect to HTTPS (not the ACME path)
    hsts_max_age: int = 0  # seconds; 0 sends no Strict-Transport-Security
    hsts_subdomains: bool = False


@dataclass(frozen=True)
class Route:
    """[routes."<prefix>"]: limits for requests whose path starts with the prefix (the
    longest such prefix applies), and optionally an external upstream that serves them."""

    prefix: str
    rate_limit: str | None = None  # per client IP, nginx notation: "5r/s", "300r/m"
    burst: int = 0  # requests over the rate a client may send at once before it gets 429
    max_conn: int | None = None  # requests in flight per client IP
    upstream: str | None = None  # http(s)://host[:port]: an external server, not a service
    budget: str | None = None  # across all clients: "600r/m"
    budget_burst: int = 0
    path_params: bool = False  # ";name=value" may end a path under the prefix (";jsessionid=")

    @property
    def limited(self) -> bool:
        return bool(self.rate_limit or self.max_conn or self.budget)


@dataclass(frozen=True)
class Edge:
    """[edge]: the edge's ports, its site and its limits."""

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
    max_client_conn: int = 512  # public requests in flight per client address (0: no cap)
    temp_size: int = 256 << 20  # bytes of the edge's tmpfs for request bodies (nginx's temp paths)
    domains: tuple[str, ...] = ()  # server_name of the public servers ("_" when empty)
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For/-Proto are believed
    acme_webroot: str | None = None  # a Docker host folder served at /.well-known/acme-challenge/
    headers: tuple[tuple[str, str], ...] = DEFAULT_HEADERS
    tls: Tls | None = None
    routes: tuple[Route, ...] = ()  # [routes."<prefix>"], longest prefix first


@dataclass(frozen=True)
class Database:
    """[database]: the PostgreSQL container, or an external database."""

    env_file: Path | None  # POSTGRES_USER, POSTGRES_PASSWORD: never in argv or logs
    name: str = "app"
    image: str | None = None  # None: build ours (Debian's PostgreSQL 17 with pgvector)
    limits: Limits = field(default_factory=Limits)
    # An external PostgreSQL (another host, a managed service): a file holding its libpq URL
    # (core/dburl.py), read when used. The deployer then runs no database container.
    url_file: Path | None = None

    @property
    def external(self) -> bool:
        return self.url_file is not None


@dataclass(frozen=True)
class Timeouts:
    """[timeouts]: the health wait and each probe's request, in seconds."""

    health_deadline: float = 120.0
    health_interval: float = 0.1
    request_timeout: float = 2.0


@dataclass(frozen=True)
class Offsite:
    """[backup.sftp] or [backup.s3]: pgBackRest's second repository, off this host. Its
    secrets stay in files (`key_file`, `known_hosts`; for S3 `credentials_file`), each
    given to the database container as a secret, never in its environment."""

    kind: str  # "sftp" or "s3"
    path: str = "/var/lib/pgbackrest"
    host: str = ""  # sftp: the host; s3: the endpoint (s3.eu-west-1.amazonaws.com)
    port: int = 22
    user: str = "pgbackrest"
    key_file: Path | None = None  # sftp: the private key (chmod 600)
    known_hosts: Path | None = None  # sftp: the host's key lines, as ~/.ssh/known_hosts has them
    bucket: str = ""  # s3
    region: str = ""  # s3
    credentials_file: Path | None = None  # s3: repo2-s3-key=... and repo2-s3-key-secret=... (chmod 600)


@dataclass(frozen=True)
class Backup:
    """[backup]: where the dumps go, their schedule and their retention."""

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
    # The restore drill: the newest dump restored into a scratch server and checked (cron, UTC;
    # "" turns it off), an hour after the default dump on Sundays.
    drill_schedule: str = "0 4 * * 0"
    webhook: str | None = None
    webhook_timeout: float = 5.0
    # Point-in-time recovery: WAL archived continuously with pgBackRest (docs/database.md).
    pitr: bool = False
    pitr_full_keep: int = 2
    offsite: Offsite | None = None  # [backup.sftp] or [backup.s3]
    max_lag: float = 600.0  # seconds a finished WAL segment may wait for a repository
    # The backup service's pgBackRest base backups (cron, UTC; "" for none): weekly full,
    # daily differential, no incremental.
    pitr_full_schedule: str = "0 1 * * 0"
    pitr_diff_schedule: str = "0 1 * * 1-6"
    pitr_incr_schedule: str = ""


@dataclass(frozen=True)
class Engine:
    """Where the Docker engine is: None for DOCKER_HOST (or the local socket), or ssh://[user@]host[:port]."""

    host: str | None = None
    mode: str = "compose"  # "swarm": releases are swarm stacks (deployer/config/swarm.py, docs/scale-out.md)


@dataclass(frozen=True)
class Swarm:
    """[swarm]: where the edge and the database run on a swarm (the nodes pull images from [registry])."""

    edge_replicas: int = 1
    edge_constraints: tuple[str, ...] = ()
    db_constraints: tuple[str, ...] = ()  # none: the manager that engine.host names


@dataclass(frozen=True)
class Registry:
    """[registry]: images go to <url>/<service image>:<version>. Credentials come from
    env_file (REGISTRY_USERNAME, REGISTRY_PASSWORD), or else the Docker config's login for
    the registry's host, unless it is anonymous."""

    url: str  # host[:port][/path], no scheme
    env_file: Path | None = None
    anonymous: bool = False

    @property
    def host(self) -> str:
        return self.url.split("/", 1)[0]

    def repository(self, image: str) -> str:
        """Where a service's image lives in the registry (its last path component kept)."""
        return f"{self.url}/{image.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class Build:
    """[build]: the build cache `deployer build` imports and exports, in buildx's notation
    (DEPLOYER_CACHE_FROM/DEPLOYER_CACHE_TO, when set, take their place)."""

    cache_from: tuple[str, ...] = ()  # such as type=registry,ref=registry.example.com/shop/cache
    cache_to: str | None = None  # such as type=registry,ref=...,mode=max


@dataclass(frozen=True)
class DbLogin:
    """services.*.db_login: the env file keys holding a service's database login (the
    release's preflight tries it): user and password, or a postgres:// URL."""

    user: str = ""
    password: str = ""
    url: str = ""


@dataclass(frozen=True)
class Watch:
    """[watch]: after the switch, the new live release is judged on the edge's metrics."""

    window: float = 180.0  # seconds; 0: no watch
    max_error_rate: float = 0.01  # share of 5xx answers (0-1); mode absolute, or no baseline
    max_p99: float = 0.5  # seconds, the upstream's p99; mode absolute, or no baseline
    min_requests: int = 50  # fewer live requests than this: no verdict
    check: str | None = None  # a path fetched through the live route on every tick
    mode: str = "relative"  # relative: against the previous release's figures; absolute: the two above
    error_margin: float = 0.01  # relative: 5xx share allowed above the previous release's
    p99_factor: float = 2.0  # relative: p99 allowed, times the previous release's
    p99_floor: float = 0.2  # relative: seconds; the p99 limit is never below this
    min_clients: int = 2  # a breach needs bad requests from this many client addresses


@dataclass(frozen=True)
class Notify:
    """[notify]: a webhook (Slack-compatible JSON) and/or a hook command, on each event."""

    webhook: str | None = None  # a secret: masked, never in argv, labels or the history
    command: tuple[str, ...] = ()  # argv; the event as JSON on stdin
    timeout: float = 5.0


@dataclass(frozen=True)
class Disk:
    """[disk]: release images to keep, and when `status` warns about free space."""

    keep_versions: int = 3  # per service; never one a colour's route state or a container uses
    prune_after_release: bool = True
    min_free: int = 2 << 30  # bytes


@dataclass(frozen=True)
class Config:
    """The whole deployer.toml, checked, with the environment's overrides merged in."""

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
    swarm: Swarm | None = None  # set exactly when engine.mode = "swarm"
    registry: Registry | None = None  # [registry]; None: images move by save/load over ssh
    build: Build = field(default_factory=Build)
    environment: str = ""  # the [environments.<name>] in use ("" for the base config)
    environments: tuple[str, ...] = ()  # every environment the config defines
    watch: Watch = field(default_factory=Watch)
    notify: Notify = field(default_factory=Notify)
    disk: Disk = field(default_factory=Disk)
    warnings: tuple[str, ...] = ()  # printed by every command that loads the config

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def routed(self) -> list[Service]:
        return [s for s in self.services.values() if s.routes]

    def route_of(self, path: str) -> tuple[str, str] | None:
        """(prefix, service) a request path goes to: the longest matching prefix wins, as in the edge."""
        return max(
            ((p, s.name) for s in self.services.values() for p in s.routes if path.startswith(p)),
            key=lambda item: len(item[0]),
            default=None,
        )

    def route_owner(self, path: str) -> str | None:
        """The service a request path goes to."""
        best = self.route_of(path)
        return best[1] if best else None

    def verify_paths(self) -> list[str]:
        """What the smoke checks and the live verification fetch: the smoke paths, or the
        health path of each service whose own routes reach it."""
        if self.smoke:
            return list(self.smoke)
        paths = [self.public_health(s) for s in self.routed]
        return [p for s, p in zip(self.routed, paths, strict=True) if self.route_owner(p.partition("?")[0]) == s.name]

    def public_health(self, service: Service) -> str:
        """A service's health path as a client asks for it: under its first route when the
        edge strips that prefix (strip_prefix), else as it is."""
        if service.strip_prefix and service.routes:
            return service.routes[0].rstrip("/") + service.health
        return service.health
