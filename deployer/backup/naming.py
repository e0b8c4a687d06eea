"""Dump file names and metadata (pure). A dump NAME has three files beside each other:

    NAME.dump          pg_dump custom format (zstd)
    NAME.dump.sha256   `sha256sum` format: "<hex>  NAME.dump"
    NAME.json          metadata: database, versions, size, duration, label, verification

While it is written the dump is `.NAME.dump.partial` (hidden, never listed, never pruned while fresh).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STAMP = "%Y%m%dT%H%M%SZ"
NAME = re.compile(r"^dump-(\d{8}T\d{6}Z)(?:-(\d+))?$")
LABEL = re.compile(r"^[\w .:,+@/()-]{0,100}$")


def new_name(now: datetime, taken: set[str]) -> str:
    """dump-20250101T030000Z, with -2, -3... when a name of that second exists."""
    base = f"dump-{now.astimezone(timezone.utc).strftime(STAMP)}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def is_name(text: str) -> bool:
    return bool(NAME.match(text))


def created_from_name(name: str) -> datetime:
    m = NAME.match(name)
    if not m:
        raise ValueError(f"not a dump name: {name!r}")
    return datetime.strptime(m.group(1), STAMP).replace(tzinfo=timezone.utc)


def dump_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.dump"


def sha_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.dump.sha256"


def meta_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.json"


def partial_file(folder: Path, name: str) -> Path:
    return folder / f".{name}.dump.partial"


def sha_line(name: str, digest: str) -> str:
    return f"{digest}  {name}.dump\n"


def parse_sha_line(text: str) -> str:
    digest = text.split()[0] if text.split() else ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("not a sha256 line")
    return digest


@dataclass(frozen=True)
class Verification:
    at: str  # ISO time, UTC
    kind: str  # "read" (sha256 + every data block) or "restore" (into a scratch server)
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Metadata:
    name: str
    database: str
    created: str  # ISO time, UTC
    server_version: str
    client_version: str
    pgvector_version: str
    size: int
    sha256: str
    duration: float
    label: str = ""
    compression: str = "zstd:3"
    verifications: tuple[Verification, ...] = field(default_factory=tuple)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)

    @property
    def verified(self) -> bool:
        """Verified when the latest check passed."""
        return bool(self.verifications) and self.verifications[-1].ok

    @property
    def verified_text(self) -> str:
        if not self.verifications:
            return "unverified"
        last = self.verifications[-1]
        return f"verified ({last.kind})" if last.ok else f"FAILED {last.kind} check"

    def with_check(self, check: Verification) -> Metadata:
        return replace(self, verifications=(*self.verifications, check))

    def to_json(self) -> str:
        data = asdict(self)
        data["verifications"] = [asdict(v) for v in self.verifications]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Metadata:
        data: dict[str, Any] = json.loads(text)
        checks = tuple(Verification(**v) for v in data.pop("verifications", []))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known, verifications=checks)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def check_label(label: str) -> str:
    if not LABEL.match(label):
        raise ValueError("a label is up to 100 letters, digits, spaces and . : , + @ / ( ) - _")
    return label
