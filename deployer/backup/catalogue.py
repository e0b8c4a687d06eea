"""The dumps folder is the catalogue: a dump exists when NAME.dump and NAME.json both exist.

Nothing is cached; every call reads the folder. Hidden `.NAME.dump.partial` files are dumps
being written (or left by a killed process) and are never listed as dumps.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deployer.backup import naming
from deployer.backup.naming import Metadata
from deployer.errors import InputError


def folder_of(config) -> Path:
    return Path(config.backup.dir)


def entries(folder: Path) -> list[Metadata]:
    """Complete dumps, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for meta_path in folder.glob("dump-*.json"):
        name = meta_path.name[: -len(".json")]
        if not naming.is_name(name) or not naming.dump_file(folder, name).is_file():
            continue
        try:
            found.append(Metadata.from_json(meta_path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError):
            continue
    return sorted(found, key=lambda m: (m.created, m.name))


def partials(folder: Path) -> list[tuple[str, Path, float]]:
    """(name, path, seconds since last write) of dumps being written or abandoned."""
    if not folder.is_dir():
        return []
    now = time.time()
    out = []
    for path in folder.glob(".dump-*.dump.partial"):
        name = path.name[1 : -len(".dump.partial")]
        try:
            out.append((name, path, now - path.stat().st_mtime))
        except FileNotFoundError:
            continue
    return out


def orphans(folder: Path) -> list[Path]:
    """Metadata or checksum files whose dump is gone (a crash between writes)."""
    if not folder.is_dir():
        return []
    out = []
    for path in list(folder.glob("dump-*.json")) + list(folder.glob("dump-*.dump.sha256")):
        name = path.name.split(".", 1)[0]
        if not naming.dump_file(folder, name).exists() and not naming.partial_file(folder, name).exists():
            out.append(path)
    return out


def get(folder: Path, name: str) -> Metadata:
    for meta in entries(folder):
        if meta.name == name:
            return meta
    raise InputError(f"no dump named {name!r} in {folder} (see `deployer backup list`)")


def newest(folder: Path) -> Metadata | None:
    found = entries(folder)
    return found[-1] if found else None


def newest_verified(folder: Path) -> Metadata | None:
    return next((m for m in reversed(entries(folder)) if m.verified), None)


def save(folder: Path, meta: Metadata) -> None:
    from deployer.backup.dump import write_atomic

    write_atomic(naming.meta_file(folder, meta.name), meta.to_json())


def remove(folder: Path, name: str) -> None:
    """Delete a dump: the data file first, so a half-removed dump is never listed."""
    for path in (naming.dump_file(folder, name), naming.sha_file(folder, name), naming.meta_file(folder, name)):
        path.unlink(missing_ok=True)


def age_seconds(meta: Metadata, now: datetime | None = None) -> float:
    return ((now or datetime.now(timezone.utc)) - meta.created_at).total_seconds()


def summary(meta: Metadata, now: datetime | None = None) -> dict[str, Any]:
    return {
        "name": meta.name,
        "created": meta.created,
        "age": naming.human_age(age_seconds(meta, now)),
        "size": meta.size,
        "size_text": naming.human_size(meta.size),
        "label": meta.label,
        "database": meta.database,
        "verified": meta.verified_text,
        "ok": meta.verified,
    }


def last_summary(config) -> dict[str, Any] | None:
    """For `deployer status`: the newest dump, its age and its verification state."""
    meta = newest(folder_of(config))
    return summary(meta) if meta else None
