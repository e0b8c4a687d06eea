"""The login of an external PostgreSQL ([database] url_file): one libpq URL,
postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=MODE].

Pure. Every message here names the part that is wrong and never shows the URL: it holds
the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

SCHEMES = ("postgresql", "postgres")
# libpq's modes; "disable" and "allow" are refused: a login that crosses a network goes encrypted
# or is at least tried encrypted first ("prefer", libpq's default)
SSLMODES = ("prefer", "require", "verify-ca", "verify-full")
HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class DbUrl:
    """An external database's libpq URL, parsed."""

    user: str
    password: str
    host: str
    port: int
    database: str
    sslmode: str = "prefer"

    @property
    def where(self) -> str:
        """host:port/database, with no login: what messages and `status` show."""
        return f"{self.host}:{self.port}/{self.database}"


def parse(text: str) -> DbUrl:
    """The URL's parts; ValueError naming what is wrong (never the URL itself)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1:
        raise ValueError(f"must hold one URL on one line (found {len(lines)} lines)")
    if "#" in lines[0]:
        raise ValueError("has a # (write a # in the password as %23)")
    try:
        parts = urlsplit(lines[0])
        port = parts.port or 5432
    except ValueError:
        raise ValueError("is not a URL postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE (its port?)") from None
    if parts.scheme not in SCHEMES:
        raise ValueError("must start with postgresql:// (its text is not shown: it holds a password)")
    if not parts.username or parts.password is None or not parts.password:
        raise ValueError("must give USER:PASSWORD@ before the host")
    host = parts.hostname or ""
    if not HOST.fullmatch(host):
        raise ValueError("must name a host (a name or an IPv4 address) after the @")
    database = unquote(parts.path.lstrip("/"))
    if not DATABASE.fullmatch(database):
        raise ValueError("must end with /DATABASE: a name of letters, digits and _, up to 63")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"sslmode"})
    if unknown:
        raise ValueError(f"takes only the option sslmode, not {', '.join(unknown)}")
    sslmode = options.get("sslmode", "prefer")
    if sslmode not in SSLMODES:
        raise ValueError(f"sslmode must be one of {', '.join(SSLMODES)}")
    return DbUrl(unquote(parts.username), unquote(parts.password), host, port, database, sslmode)
