"""Env files: read, checked and never echoed.

The grammar is the one docker compose reads: `KEY=VALUE` lines, blank lines and `#`
comments, an optional `export ` prefix, and values in single or double quotes. A line
that is not like that is reported by its number only: its text may hold a secret.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from deployer.core import masking
from deployer.errors import ConfigError

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
SECRET_KEY = re.compile(r".*(PASSWORD|PASSWD|PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE).*", re.IGNORECASE)
# The lookbehind starts a scheme only where a run of scheme characters starts: without it, a
# long value with no URL in it costs time quadratic in its length (a 400 KB key: minutes).
URL_PASSWORD = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^/:@\s]+:([^@\s]+)@", re.IGNORECASE)
LINE = re.compile(r"(?:export[ \t]+)?([^=\s]+)[ \t]*=[ \t]*(.*)")


@dataclass(frozen=True)
class EnvFile:
    """An env file's path and its values."""

    path: Path
    values: dict[str, str]


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _value(raw: str) -> str | None:
    """The value, or None when a quote opens and does not close where the value ends (a
    comment may follow it)."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        rest = raw[end + 1 :].strip() if end > 0 else None
        if rest is None or (rest and not rest.startswith("#")):
            return None
        return raw[1:end]
    return re.split(r"[ \t]#", raw, maxsplit=1)[0].rstrip()


def parse(text: str, *, where: object, key: str) -> dict[str, str]:
    """KEY=VALUE lines. A line is reported by its number (and its key), never its text."""
    values: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if CONTROL.search(line):
            raise ConfigError(where, key, f"line {number} holds a control character (a NUL, an escape, ...)")
        m = LINE.fullmatch(stripped)
        if not m or not KEY.fullmatch(m.group(1)):
            raise ConfigError(where, key, f"line {number} is not KEY=VALUE (its text is not shown: it may be a secret)")
        name, value = m.group(1), _value(m.group(2))
        if value is None:
            raise ConfigError(where, key, f"line {number} ({name}) opens a quote that does not close the value")
        if name in first:
            raise ConfigError(where, key, f"line {number} sets {name} again (first on line {first[name]})")
        first[name] = number
        values[name] = value
    return values


def read(path: Path, *, where: object, key: str, check_mode: bool = True) -> EnvFile:
    """Read and check one env file: a readable UTF-8 file, owned by this user, not readable by others."""
    values = parse(read_mode_checked(path, where=where, key=key, check_mode=check_mode), where=where, key=key)
    register_secrets(values)
    return EnvFile(path, values)


def read_mode_checked(path: Path, *, where: object, key: str, check_mode: bool = True) -> str:
    """The text of a file that holds secrets: UTF-8, owned by this user, not readable by others."""
    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(where, key, f"cannot read {path}: {exc.strerror}") from None
    if check_mode:
        if info.st_mode & stat.S_IROTH:
            raise ConfigError(
                where,
                key,
                f"{path} is readable by every user on this machine: run `chmod 600 {path}` (it holds secrets)",
            )
        if os.geteuid() != 0 and info.st_uid != os.geteuid():
            raise ConfigError(where, key, f"{path} belongs to another user (uid {info.st_uid}): secrets must be yours")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(where, key, f"{path} is not UTF-8 text") from None


def register_secrets(values: dict[str, str]) -> None:
    """Values of secret-looking keys, and passwords inside URLs, are masked in all output."""
    for k, v in values.items():
        if SECRET_KEY.fullmatch(k):
            masking.register(v)
        m = URL_PASSWORD.search(v)
        if m:
            masking.register(m.group(1))


def register_url(url: str | None) -> None:
    """A URL that is a secret as a whole (a webhook): the URL, its password, and every part
    of its path or query long enough to be a token are masked in all output."""
    if not url:
        return
    masking.register(url)
    register_secrets({"URL": url})
    rest = url.split("://", 1)[-1].partition("/")[2]
    for part in re.split(r"[/?&=#]", rest):
        if len(part) >= 12:
            masking.register(part)


def check_secrets(r, prefix: str, env_file: Path | None, secrets: tuple[str, ...]) -> None:
    """services.*.secrets: keys its env file defines, delivered as files instead of variables."""
    if not secrets:
        return
    key = f"{prefix}.secrets"
    if env_file is None:
        raise r.error(key, "needs an env_file that defines these keys")
    if len(set(secrets)) != len(secrets):
        raise r.error(key, "lists the same key twice")
    if not r.check_paths:
        return
    with r.files():
        values = read(env_file, where=r.file, key=f"{prefix}.env_file").values
        for name in secrets:
            if name not in values:
                raise r.error(key, f"{name} is not defined in {env_file}")
            masking.register(values[name])


def exposed(config, env: dict[str, dict[str, str]]) -> list[str]:
    """The env file keys that look like secrets (by their name, or a password in a URL) but
    are not in the service's `secrets`: they become environment variables, which `docker
    inspect` shows to anyone who may use the engine. Each as a warning to print."""
    found = []
    for s in config.services.values():
        for key, value in env.get(s.name, {}).items():
            if key in s.secrets or not value or not (SECRET_KEY.fullmatch(key) or URL_PASSWORD.search(value)):
                continue
            found.append(
                f"{s.name}: {key} (from {s.env_file.name if s.env_file else 'its env file'}) looks like a secret "
                f"and is an environment variable, which `docker inspect` shows; list it in "
                f"services.{s.name}.secrets to deliver it as a file instead"
            )
    return found


def service_env(config) -> dict[str, dict[str, str]]:
    """Each service's env file, read and checked (its values are registered as secrets)."""
    return {
        s.name: read(s.env_file, where=config.path, key=f"services.{s.name}.env_file").values
        for s in config.services.values()
        if s.env_file
    }
