"""[environments.<name>]: one config, several hosts (staging, production, ...).

An environment is a table of overrides of the base config, merged into the raw TOML
before it is parsed, so the merged result passes through every check the base does:

    [environments.production]
    engine.host = "ssh://deploy@app.example.com"
    edge.public_port = 80
    services.backend.env_file = "backend.production.env"

Only the keys in OVERRIDABLE may be overridden: the shape of the app (its services,
images, routes, health paths) and its name are the same everywhere, so what staging
proved healthy is what production runs. Every environment's keys and values are checked
on every load, whichever one is used, so a typo in production's table is found while
releasing to staging; the files an environment names are checked only when it is the one in use (the
staging runner has no production secrets).
"""

from __future__ import annotations

import copy
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from deployer.config.edge import TLS_KEYS
from deployer.errors import ConfigError

ENV_NAME = re.compile(r"[a-z][a-z0-9-]{0,23}")

# The one list of what an environment may override ('*' stands for one name: a service,
# a TLS setting, ...). Everything else stays the base config's.
OVERRIDABLE = (
    "project.id",  # give each environment its own: the deployer then refuses a host that another one set up
    "project.base_image",  # a staging host may try a new base image first
    "engine.host",
    "edge.public_port",
    "edge.public_bind",
    "edge.preview_port",
    "edge.domains",
    "edge.trusted_proxies",
    "edge.acme_webroot",
    "edge.tls.*",
    "services.*.env_file",
    "services.*.cpus",
    "services.*.memory",
    "services.*.max_in_flight",  # production's capacity is not staging's
    "database.env_file",
    "database.url_file",  # staging's database is not production's
    "database.cpus",
    "database.memory",
    "backup.dir",
    "backup.schedule",
    "backup.webhook",
    "backup.keep_*",
    "watch.window",  # staging's traffic may be too thin for a verdict
)


def names(raw: dict[str, Any], file: Path) -> tuple[str, ...]:
    """The environments a config defines, each checked (names and keys)."""
    table = raw.get("environments")
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(file, "environments", "must be a table of [environments.<name>] tables")
    for name, body in table.items():
        where = f"environments.{name}"
        if not ENV_NAME.fullmatch(name):
            raise ConfigError(file, where, "an environment's name is 1-24 characters of a-z, 0-9 and '-'")
        if not isinstance(body, dict):
            raise ConfigError(file, where, "must be a table of the keys it overrides")
        for key in _leaves(body):
            _check_key(raw, file, name, key)
    _distinct(raw, file, table)
    return tuple(table)


def _distinct(raw: dict[str, Any], file: Path, table: dict[str, Any]) -> None:
    """Two environments are two deployments: never the same project.id set twice (it is what
    tells one environment's host from another's), nor the same host with the same id."""
    base = {k: (raw.get(k.split(".")[0]) or {}).get(k.split(".")[1]) for k in ("project.id", "engine.host")}
    seen_ids: dict[Any, str] = {}
    seen: dict[tuple[Any, Any], str] = {}
    for name, body in table.items():
        leaves = _leaves(body)
        own_id, host = leaves.get("project.id"), leaves.get("engine.host", base["engine.host"])
        if own_id is not None and own_id in seen_ids:
            raise ConfigError(
                file, f"environments.{name}.project.id", f"is environments.{seen_ids[own_id]}'s too: give each its own"
            )
        if own_id is not None:
            seen_ids[own_id] = name
        both = (own_id if own_id is not None else base["project.id"], host or "the local engine")
        if both in seen:
            raise ConfigError(
                file,
                f"environments.{name}",
                f"is the same deployment as environments.{seen[both]} (the same engine.host and project.id): "
                "give it its own engine.host or project.id",
            )
        seen[both] = name


def apply(raw: dict[str, Any], file: Path, environment: str | None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(the raw config with the environment's overrides merged in and [environments]
    removed, the names of every environment it defines)."""
    defined = names(raw, file)
    base = {k: v for k, v in raw.items() if k != "environments"}
    if not environment:
        return base, defined
    if environment not in defined:
        have = f"this config defines {', '.join(defined)}" if defined else "this config defines no [environments.*]"
        raise ConfigError(file, f"environments.{environment}", f"no such environment ({have})")
    merged = copy.deepcopy(base)
    for key, value in _leaves(raw["environments"][environment]).items():
        node = merged
        *parents, last = key.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # the base config has a value where a table goes
                raise ConfigError(file, ".".join(parents[: depth + 1]), "must be a table")
        node[last] = copy.deepcopy(value)
    return merged, defined


def _leaves(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def overridable(key: str) -> bool:
    parts = key.split(".")
    return any(
        len(pattern.split(".")) == len(parts)
        and all(fnmatchcase(part, want) for part, want in zip(parts, pattern.split("."), strict=True))
        for pattern in OVERRIDABLE
    )


def _check_key(raw: dict[str, Any], file: Path, name: str, key: str) -> None:
    where = f"environments.{name}.{key}"
    if not overridable(key):
        raise ConfigError(
            file, where, f"an environment may not override {key} (it may override: {', '.join(OVERRIDABLE)})"
        )
    parts = key.split(".")
    if parts[:2] == ["edge", "tls"] and parts[2] not in TLS_KEYS:
        raise ConfigError(file, where, f"unknown key ([edge.tls] takes {', '.join(TLS_KEYS)})")
    if parts[0] == "services":
        services = raw.get("services")
        if not isinstance(services, dict) or parts[1] not in services:
            raise ConfigError(file, where, f"no [services.{parts[1]}] in the base config to override")


def blame(exc: ConfigError, raw: dict[str, Any], environment: str | None) -> ConfigError:
    """An error in a key the environment set names the environment's key."""
    table = (raw.get("environments") or {}).get(environment or "")
    if not environment or not exc.key or not isinstance(table, dict) or exc.key not in _leaves(table):
        return exc
    message = str(exc).split(f"{exc.key}: ", 1)[-1]
    return ConfigError(exc.path, f"environments.{environment}.{exc.key}", message)
