"""Typed access to the dotted keys of a parsed TOML document; every error names the key.

Every regular expression here is matched in full (`fullmatch`), so a trailing newline
never slips through.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError

URL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?")
ROUTE_PREFIX = re.compile(r"/[A-Za-z0-9._~/-]*")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
SIZE = re.compile(r"[1-9][0-9]{0,5}[kmg]?")


class Reader:
    """Remembers which keys were read, so that unknown keys can be rejected by name."""

    def __init__(self, raw: dict[str, Any], file: Path, *, check_paths: bool = True) -> None:
        self.raw = raw
        self.file = file
        self.check_paths = check_paths
        self.seen: set[str] = set()
        self.remote = False  # engine.host is set: a host folder is on another machine
        self.problems: list[ConfigError] | None = None  # `deployer config check` gathers the file checks' failures
        self.warnings: list[str] = []  # printed by every command that loads the config (Config.warnings)

    @contextmanager
    def files(self) -> Iterator[None]:
        """A check of the files on this machine (env files, TLS files, build contexts): its
        failure is raised, or gathered when `problems` is a list, so that `deployer config
        check` names every file problem at once. Nothing after a failed check in the block runs."""
        try:
            yield
        except ConfigError as exc:
            if self.problems is None:
                raise
            self.problems.append(exc)

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.file, key, message)

    def get(self, key: str) -> Any:
        node: Any = self.raw
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict):
                raise self.error(".".join(parts[:i]), "must be a table")
            if part not in node:
                return None
            node = node[part]
        self.seen.add(key)
        return node

    def table(self, key: str, *, required: bool = True) -> dict[str, Any]:
        value = self.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing table")
            return {}
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return value

    def string(self, key: str, *, default: str | None = None, required: bool = False) -> str:
        value = self.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing (required)")
            return default or ""
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {type(value).__name__}")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise self.error(key, "must not contain control characters (a newline, a tab, ...)")
        return value

    def matching(
        self, key: str, pattern: re.Pattern[str], what: str, *, default: str = "", required: bool = False
    ) -> str:
        value = self.string(key, default=default, required=required)
        if value == "" and self.get(key) is not None:  # written, but empty: never the same as left out
            raise self.error(key, f"must be {what}, not empty")
        if value and not pattern.fullmatch(value):
            raise self.error(key, f"must be {what}: {value!r}")
        return value

    def ident(self, key: str, *, default: str) -> str:
        return self.matching(key, IDENT, "a plain identifier (letters, digits, '_')", default=default)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def number(self, key: str, *, default: float, low: float, high: float, unit: str = "seconds") -> float:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number of {unit}")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low:g} and {high:g}")
        return float(value)

    def integer(self, key: str, *, default: int, low: int, high: int) -> int:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be a whole number")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}")
        return value

    def optional_number(self, key: str, *, low: float, high: float, unit: str) -> float | None:
        if self.get(key) is None:
            return None
        return self.number(key, default=0, low=low, high=high, unit=unit)

    def port(self, key: str, *, default: int = 0, required: bool = False, allow_zero: bool = True) -> int:
        if required and self.get(key) is None:
            raise self.error(key, "missing (required)")
        value = self.integer(key, default=default, low=0, high=65535)
        if value == 0 and not allow_zero:
            raise self.error(key, "must be a port between 1 and 65535")
        return value

    def address(self, key: str, *, default: str) -> str:
        value = self.string(key, default=default)
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise self.error(key, f"must be an IP address such as 0.0.0.0 or 127.0.0.1: {value!r}") from None

    def size(self, key: str, *, default: str) -> str:
        return self.matching(key, SIZE, "a size such as 512k, 20m or 1g", default=default).lower()

    def url_path(self, key: str, *, required: bool = False, default: str = "/") -> str:
        value = self.matching(key, URL_PATH, "a URL path starting with '/'", default=default, required=required)
        self._no_dot_segments(key, value.split("?", 1)[0])
        return value

    def _no_dot_segments(self, key: str, path: str) -> None:
        if any(part in (".", "..") for part in path.split("/")):
            raise self.error(key, f"{path!r} holds a '.' or '..' segment (clients and nginx resolve it away)")

    def prefixes(self, key: str, *, default: list[str]) -> list[str]:
        value = self.get(key)
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be a list of strings")
        for v in value:
            if not ROUTE_PREFIX.fullmatch(v):
                raise self.error(key, f"not a plain URL path prefix: {v!r}")
            self._no_dot_segments(key, v)
        if len(set(value)) != len(value):
            raise self.error(key, "lists the same prefix twice")
        return value

    def names(self, key: str, pattern: re.Pattern[str], what: str) -> list[str]:
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be a list of strings")
        for v in value:
            if not pattern.fullmatch(v):
                raise self.error(key, f"must list {what}: {v!r}")
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise self.error(key, f"lists {twice[0]!r} twice")
        return value

    def host_folder(self, key: str) -> str | None:
        """A folder of the Docker host that is bind-mounted (None: not set). Checked as text only:
        it may be on another machine."""
        value = self.string(key, default="")
        if not value:
            return None
        if value != value.strip() or not value.strip():
            raise self.error(key, f"{value!r} starts or ends with a space")
        if ":" in value or "," in value:
            raise self.error(key, f"{value!r}: a folder for a mount may not contain ':' or ','")
        parts = [p for p in value.split("/") if p not in ("", ".")]
        if value.startswith("/") and not parts:
            raise self.error(key, "the root folder '/' cannot be the deployer's")
        if self.remote and not value.startswith("/"):
            raise self.error(key, f"{value!r} is relative: with engine.host it must be an absolute path on that host")
        if len(value) > 1024:
            raise self.error(key, "longer than 1024 characters")
        return value

    def path(self, key: str, *, must_exist: bool, kind: str = "") -> Path | None:
        value = self.string(key, default="")
        if not value:
            return None
        resolved = self._resolve(key, value, lambda p: p)
        if must_exist and self.check_paths:
            with self.files():
                self._resolve(key, value, lambda p: self._exists(key, value, p, kind))
        return resolved

    def _resolve(self, key: str, value: str, then: Any) -> Any:
        try:
            return then((self.file.parent / value).resolve())
        except OSError as exc:  # a name too long, a loop of links, ...
            raise self.error(key, f"cannot use {value[:80]!r}: {exc.strerror}") from None
        except RuntimeError:  # Python before 3.13 says so for a loop of links
            raise self.error(key, f"cannot use {value[:80]!r}: a loop of symbolic links") from None

    def _exists(self, key: str, value: str, resolved: Path, kind: str) -> None:
        if not resolved.exists():
            raise self.error(key, f"{value} does not exist (relative paths start at the config's folder)")
        if kind == "file" and not resolved.is_file():
            raise self.error(key, f"{value} is not a file")
        if kind == "dir" and not resolved.is_dir():
            raise self.error(key, f"{value} is not a folder")

    def reject_unknown(self, *, skip: tuple[str, ...] = ()) -> None:
        """Every key of every table must have been read (tables under `skip` check their own)."""

        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                dotted = f"{prefix}{key}"
                if dotted in skip:
                    continue
                if isinstance(value, dict):
                    if not value and prefix and dotted not in self.seen:
                        raise self.error(dotted, "unknown table")
                    walk(value, dotted + ".")
                elif dotted not in self.seen:
                    raise self.error(dotted, "unknown key")

        walk(self.raw, "")
