"""Load `deployer.toml` into frozen objects, validating everything before any side effect.

Every error names the file and the key (exit code 2). Nothing here touches Docker.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from deployer.config import build as build_config
from deployer.config import data, envfile, environments, safety
from deployer.config import edge as edge_config
from deployer.config import registry as registry_config
from deployer.config import swarm as swarm_config
from deployer.config.data import IMAGE_NAME, IMAGE_REF
from deployer.config.model import Backup, Config, Database, Edge, Engine, Limits, Route, Service, Timeouts, Tls
from deployer.config.reader import Reader
from deployer.core import names
from deployer.errors import ConfigError

__all__ = [
    "Backup",
    "Config",
    "Database",
    "Edge",
    "Engine",
    "Limits",
    "Route",
    "Service",
    "Timeouts",
    "Tls",
    "find",
    "load",
    "parse",
]

DEFAULT_FILE = "deployer.toml"
MAX_SERVICES = 16
SECTIONS = (
    "project",
    "engine",
    "services",
    "edge",
    "routes",
    "database",
    "timeouts",
    "smoke",
    "backup",
    "registry",
    "build",
    "environments",
    "swarm",
    *safety.SECTIONS,
)
DEPLOYMENT_ID = re.compile(r"[a-z0-9]{8,32}")
PROJECT_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
RESERVED_SERVICES = ("edge", "db", "backup", "deployer")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A user and host never start with '-': ssh would read them as options.
RESTART = ("no", "always", "unless-stopped", "on-failure")
SERVICE_KEYS = {
    "image",
    "port",
    "health",
    "routes",
    "env_file",
    "required_env",
    "build",
    "dockerfile",
    "build_args",
    "stop_grace",
    "max_in_flight",
    "strip_prefix",
    "cpus",
    "memory",
    "secrets",
    "replicas",  # swarm mode only (config/swarm.py)
    "placement",  # swarm mode only
    *safety.SERVICE_KEYS,  # migrate, migrate_timeout, db_login (config/safety.py)
}


def find(path: str | Path | None) -> Path:
    candidate = Path(path) if path else Path.cwd() / DEFAULT_FILE
    try:
        if not candidate.is_file():
            what = "is not a regular file" if candidate.exists() else "config file not found"
            raise ConfigError(candidate, None, f"{what} (use --config PATH)")
        return candidate.resolve()
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ConfigError(candidate, None, f"cannot use it as the config file: {exc.strerror}") from None


def load(
    path: str | Path | None = None,
    *,
    check_paths: bool = True,
    environment: str | None = None,
    problems: list[ConfigError] | None = None,
) -> Config:
    """check_paths=False skips the checks of files on the CLI's machine (env files, build
    contexts, templates): the backup service sees only what it is given. `environment`
    merges that [environments.<name>] table into the base first. With a `problems` list, the
    checks of those files add their failures to it instead of raising the first (`deployer
    config check`); a value that is wrong still raises."""
    file = find(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(file, None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"not valid TOML: {exc}") from None
    return parse(raw, file, check_paths=check_paths, environment=environment, problems=problems)


def parse(
    raw: dict[str, Any],
    file: Path,
    *,
    check_paths: bool = True,
    environment: str | None = None,
    problems: list[ConfigError] | None = None,
) -> Config:
    merged, defined = environments.apply(raw, file, environment)
    found: list[ConfigError] | None = None if problems is None else []
    try:
        config = _parse(
            merged, file, check_paths=check_paths, environment=environment or "", defined=defined, problems=found
        )
    except ConfigError as exc:
        raise environments.blame(exc, raw, environment) from None
    if problems is not None and found:
        problems.extend(environments.blame(exc, raw, environment) for exc in found)
    # Every other environment's values too (not the files it names: this machine may not
    # have production's secrets), so that a bad value in production is found on staging.
    for other in defined:
        if other != environment:
            try:
                _parse(
                    environments.apply(raw, file, other)[0], file, check_paths=False, environment=other, defined=defined
                )
            except ConfigError as exc:
                raise environments.blame(exc, raw, other) from None
    return config


def _parse(
    raw: dict[str, Any],
    file: Path,
    *,
    check_paths: bool,
    environment: str,
    defined: tuple[str, ...],
    problems: list[ConfigError] | None = None,
) -> Config:
    r = Reader(raw, file, check_paths=check_paths)
    r.problems = problems
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(file, key, f"unknown section (expected one of {', '.join(SECTIONS)})")
    name = r.matching(
        "project.name", PROJECT_NAME, "2-32 characters of a-z, 0-9 and '-', starting with a letter", required=True
    )
    deployment = r.matching("project.id", DEPLOYMENT_ID, "8-32 characters of a-z and 0-9 (deployer init writes one)")
    restart = r.string("project.restart", default=Config.restart)
    if restart not in RESTART:
        raise ConfigError(file, "project.restart", f"must be one of {', '.join(RESTART)}")
    host = r.matching("engine.host", names.SSH_HOST, "ssh://[user@]host[:port]") or None
    port = names.SSH_HOST.fullmatch(host).group(1) if host else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise r.error("engine.host", f"the port {port} is not between 1 and 65535")
    engine, r.remote = Engine(host=host, mode=swarm_config.mode(r)), host is not None
    services = _services(r)
    edge = edge_config.read(r, services)
    database = data.database(r, engine.mode)
    timeouts = Timeouts(
        health_deadline=r.number("timeouts.health_deadline", default=Timeouts.health_deadline, low=1, high=3600),
        health_interval=r.number("timeouts.health_interval", default=Timeouts.health_interval, low=0.05, high=60),
        request_timeout=r.number("timeouts.request_timeout", default=Timeouts.request_timeout, low=0.1, high=60),
    )
    if timeouts.health_interval >= timeouts.health_deadline:
        raise ConfigError(file, "timeouts.health_interval", "must be shorter than timeouts.health_deadline")
    smoke = tuple(r.prefixes("smoke.paths", default=[]))
    backup = data.backup(r, engine.mode, external=database.external)
    registry = registry_config.read(r)
    build = build_config.read(r)
    swarm = swarm_config.read(r, engine.mode, services, edge, registry)
    services, backup, safe = safety.read(r, services, backup)
    config = Config(
        path=file,
        name=name,
        services=services,
        edge=edge,
        database=database,
        timeouts=timeouts,
        backup=backup,
        engine=engine,
        smoke=smoke,
        restart=restart,
        base_image=r.matching("project.base_image", IMAGE_REF, "an image reference", default=Config.base_image),
        deployment=deployment,
        registry=registry,
        build=build,
        swarm=swarm,
        environment=environment,
        environments=defined,
        **safe,
        warnings=tuple(r.warnings),
    )
    r.reject_unknown()  # after every read, project.base_image's in Config(...) too
    _check_routes(config)
    hidden = tuple(_hidden_health(config))
    return dataclasses.replace(config, warnings=config.warnings + hidden) if hidden else config


def _services(r: Reader) -> dict[str, Service]:
    table = r.table("services")
    if not table:
        raise r.error("services", "no service: add at least one [services.<name>]")
    if len(table) > MAX_SERVICES:
        raise r.error("services", f"{len(table)} services: at most {MAX_SERVICES} are supported")
    services = {}
    for name in table:
        prefix = f"services.{name}"
        if not names.SERVICE_NAME.fullmatch(name):
            raise r.error(prefix, "a service name is 1-24 characters of a-z, 0-9 and '-', starting with a letter")
        if name in RESERVED_SERVICES:
            raise r.error(prefix, f"{name!r} is reserved for the deployer's own containers")
        body = r.table(prefix)
        for key in body:
            if key not in SERVICE_KEYS:
                raise r.error(f"{prefix}.{key}", f"unknown key (a service takes {', '.join(sorted(SERVICE_KEYS))})")
        image = r.matching(
            f"{prefix}.image", IMAGE_NAME, "an image name without a tag (the version is the tag)", required=True
        )
        if len(image) > 255:
            raise r.error(f"{prefix}.image", "longer than Docker's 255 characters for an image name")
        env_file = r.path(f"{prefix}.env_file", must_exist=True, kind="file")
        required_env = tuple(r.names(f"{prefix}.required_env", ENV_KEY, "environment variable names"))
        if (required_env or env_file) and r.check_paths:
            with r.files():
                values = envfile.read(env_file, where=r.file, key=f"{prefix}.env_file").values if env_file else {}
                missing = [k for k in required_env if k not in values]
                if missing:
                    raise r.error(
                        f"{prefix}.required_env",
                        f"{missing[0]} is required but {'not in ' + str(env_file) if env_file else 'the service has no env_file'}",
                    )
        secrets = tuple(r.names(f"{prefix}.secrets", envfile.KEY, "keys of the service's env file"))
        envfile.check_secrets(r, prefix, env_file, secrets)
        services[name] = Service(
            name=name,
            image=image,
            port=r.port(f"{prefix}.port", required=True, allow_zero=False),
            health=r.url_path(f"{prefix}.health", required=True),
            routes=tuple(r.prefixes(f"{prefix}.routes", default=[])),
            env_file=env_file,
            required_env=required_env,
            build=r.path(f"{prefix}.build", must_exist=True, kind="dir"),
            dockerfile=r.path(f"{prefix}.dockerfile", must_exist=True, kind="file"),
            build_args=build_config.build_args(r, prefix, has_build=body.get("build") is not None),
            stop_grace=r.integer(f"{prefix}.stop_grace", default=Service.stop_grace, low=1, high=600),
            max_in_flight=_max_in_flight(r, prefix, has_routes=bool(body.get("routes"))),
            strip_prefix=r.boolean(f"{prefix}.strip_prefix", default=False),
            limits=data.limits(r, prefix),
            secrets=secrets,
            **swarm_config.service(r, prefix),
        )
    return services


def _max_in_flight(r: Reader, prefix: str, *, has_routes: bool) -> int | None:
    """services.*.max_in_flight: public requests the edge lets reach one colour of the
    service at once; the excess waits up to 2 s for a slot, then gets 503 + Retry-After
    (lua/deployer/inflight.lua)."""
    key = f"{prefix}.max_in_flight"
    if r.get(key) is None:
        return None
    value = r.integer(key, default=0, low=1, high=100_000)
    if not has_routes:
        raise r.error(key, f"the service has no routes, so the edge sends it no requests (set {prefix}.routes)")
    return value


def _check_routes(config: Config) -> None:
    owner: dict[str, str] = {}
    for service in config.services.values():
        for prefix in service.routes:
            if prefix in owner:
                raise ConfigError(
                    config.path,
                    f"services.{service.name}.routes",
                    f"{prefix!r} is also a route of services.{owner[prefix]} (each prefix goes to one service)",
                )
            owner[prefix] = service.name
        if service.strip_prefix and not service.routes:
            raise ConfigError(
                config.path, f"services.{service.name}.strip_prefix", "the service has no routes to strip"
            )
    if not owner:
        raise ConfigError(config.path, "services", "no service has routes: the edge would serve nothing")
    if not config.smoke and not config.verify_paths():
        raise ConfigError(
            config.path,
            "smoke.paths",
            "required here: no service's health path is reachable through its own routes, so name paths to check",
        )


def _hidden_health(config: Config) -> list[str]:
    """A health path under one of its service's own routes that another service's longer route
    takes: the edge sends a request for it to that service (a Next.js `/api/health` under the
    backend's `/api/`). A health path outside its service's routes (Spring's `/actuator/health`)
    is private by design, and not warned."""
    found = []
    for s in config.routed:
        path = config.public_health(s).partition("?")[0]
        prefix, owner = config.route_of(path) or ("", s.name)
        if owner != s.name and any(path.startswith(p) for p in s.routes):
            found.append(
                f"services.{s.name}.health = {s.health!r}: through the edge it goes to services.{owner} "
                f"(route {prefix!r}), so the live route never reaches it; move it out of {prefix!r} "
                f"or add it to services.{s.name}.routes"
            )
    return found
