"""`deployer config check` and `deployer config show`: the config as a release reads it, with
no engine, so that a pull request's CI can check it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from deployer.config import load
from deployer.config.model import Config
from deployer.errors import ConfigError


def contexts(config: Config) -> list[ConfigError]:
    """Each build context is a folder that holds its Dockerfile (services.*.dockerfile, or
    `Dockerfile` in the context as docker reads it)."""
    found = []
    for s in config.services.values():
        key = f"services.{s.name}"
        if s.build is None:
            continue
        if not s.build.is_dir():
            found.append(ConfigError(config.path, f"{key}.build", f"{s.build} is not a folder"))
        elif s.dockerfile and not s.dockerfile.is_file():
            found.append(ConfigError(config.path, f"{key}.dockerfile", f"{s.dockerfile} is not a file"))
        elif not s.dockerfile and not (s.build / "Dockerfile").is_file():
            found.append(
                ConfigError(config.path, f"{key}.build", f"{s.build} has no Dockerfile (or set {key}.dockerfile)")
            )
    return found


def check(path: Path | None, environment: str | None, *, secrets: bool = True) -> tuple[Config, list[ConfigError]]:
    """The config (a wrong value raises, as on every command) and every problem of the files
    it names: env files (modes, required keys), TLS files, build contexts and Dockerfiles.
    `secrets=False` skips the env and TLS files, which a CI job does not have. One problem
    per key: a missing file is not reported again as unreadable."""
    problems: list[ConfigError] = []
    config = load(path, check_paths=secrets, environment=environment, problems=problems)
    first: dict[str | None, ConfigError] = {}
    for problem in [*problems, *contexts(config)]:
        first.setdefault(problem.key, problem)
    return config, list(first.values())


def shown(config: Config) -> dict[str, Any]:
    """The resolved config as plain data (paths as text). It holds no env file's values; the
    webhook URLs are masked where it is printed (they are registered as secrets)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(config)


def flat(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """`key.sub = value` pairs of `shown`, for the human view."""
    if isinstance(data, dict) and data:
        return [pair for key, value in data.items() for pair in flat(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]
