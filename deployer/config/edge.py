"""[edge], [edge.tls], [edge.headers] and [routes."<prefix>"]: the edge's settings, checked
before any side effect. Every error names its key (exit code 2).

The certificate and its key are files on the CLI's machine: they are checked here (they
exist, are PEM, the key is not readable by other users and matches the certificate), and
uploaded into the edge by `deployer up` and `deployer edge reload`, which also check the
certificate's dates (check_dates).
"""

from __future__ import annotations

import ipaddress
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployer.config.model import DEFAULT_HEADERS, Edge, Route, Service, Tls
from deployer.config.reader import ROUTE_PREFIX, Reader
from deployer.core import tls as tls_pem
from deployer.core.durations import parse_size

TLS_KEYS = ("cert", "key", "port", "redirect", "hsts_max_age", "hsts_subdomains")  # [edge.tls]
RATE = re.compile(r"([1-9][0-9]{0,5})r/([sm])")
UPSTREAM = re.compile(
    r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(?::([0-9]{1,5}))?/?"
)
DOMAIN = re.compile(r"(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
# The edge sets these itself (or they belong to the app and to HTTP): not for edge.headers.
RESERVED_HEADERS = {
    "strict-transport-security": "use edge.tls.hsts_max_age",
    "retry-after": "the edge sets it on its own 429 answers",
    "x-deployer-colour": "see edge.expose_colour",
    "x-deployer-release": "see edge.expose_colour",
}
HOP_HEADERS = {"connection", "content-length", "content-type", "date", "location", "server", "set-cookie"}
ROUTE_KEYS = ("rate_limit", "burst", "max_conn", "upstream", "budget", "budget_burst", "path_params")
MAX_PEM = 1 << 20


def read(r: Reader, services: dict[str, Service]) -> Edge:
    edge = Edge(
        public_port=r.port("edge.public_port", default=Edge.public_port),
        preview_port=r.port("edge.preview_port", default=Edge.preview_port),
        public_bind=r.address("edge.public_bind", default=Edge.public_bind),
        template=r.path("edge.template", must_exist=True, kind="file"),
        access_log=r.boolean("edge.access_log", default=Edge.access_log),
        expose_colour=r.boolean("edge.expose_colour", default=Edge.expose_colour),
        max_body=r.size("edge.max_body", default=Edge.max_body),
        proxy_timeout=r.integer("edge.proxy_timeout", default=Edge.proxy_timeout, low=1, high=86400),
        client_timeout=r.integer("edge.client_timeout", default=Edge.client_timeout, low=1, high=3600),
        keepalive_timeout=r.integer("edge.keepalive_timeout", default=Edge.keepalive_timeout, low=0, high=3600),
        upstream_keepalive=r.integer("edge.upstream_keepalive", default=Edge.upstream_keepalive, low=1, high=16384),
        upstream_idle_timeout=r.integer(
            "edge.upstream_idle_timeout", default=Edge.upstream_idle_timeout, low=1, high=3600
        ),
        max_client_conn=r.integer("edge.max_client_conn", default=Edge.max_client_conn, low=0, high=100000),
        temp_size=_temp_size(r),
        domains=tuple(r.names("edge.domains", DOMAIN, "domain names in lowercase, such as example.com")),
        trusted_proxies=_networks(r, "edge.trusted_proxies"),
        acme_webroot=r.host_folder("edge.acme_webroot"),
        headers=_headers(r),
        tls=_tls(r),
        routes=_routes(r, services),
    )
    if edge.public_port and edge.public_port == edge.preview_port:
        raise r.error("edge.preview_port", "must differ from edge.public_port")
    if edge.tls and edge.tls.port and edge.tls.port in (edge.public_port, edge.preview_port):
        raise r.error("edge.tls.port", "must differ from edge.public_port and edge.preview_port")
    return edge


def _temp_size(r: Reader) -> int:
    """Bytes of the tmpfs that holds the request bodies being received (nginx's temporary
    files): 256m, or twice edge.max_body when that is more. Never less than one body."""
    max_body = parse_size(r.size("edge.max_body", default=Edge.max_body)) or 0
    if r.get("edge.temp_size") is None:
        return max(Edge.temp_size, 2 * max_body)
    size = parse_size(r.size("edge.temp_size", default="")) or 0
    if size < max_body:
        raise r.error("edge.temp_size", "must be at least edge.max_body: a body of that size must fit")
    return size


def _networks(r: Reader, key: str) -> tuple[str, ...]:
    value = r.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.error(key, "must be a list of IP addresses or networks, such as 10.0.0.0/8")
    found = []
    for v in value:
        try:
            found.append(str(ipaddress.ip_network(v, strict=False)))
        except ValueError:
            raise r.error(key, f"not an IP address or network: {v!r}") from None
    return tuple(found)


# -- security headers ---------------------------------------------------------------------
def _headers(r: Reader) -> tuple[tuple[str, str], ...]:
    table = r.table("edge.headers", required=False)
    merged = {name.lower(): (name, value) for name, value in DEFAULT_HEADERS}
    seen: dict[str, str] = {}
    for name in table:
        key = f"edge.headers.{name}"
        if not HEADER_NAME.fullmatch(name):
            raise r.error(key, "a header name is letters, digits and '-'")
        lower = name.lower()
        if lower in seen:
            raise r.error(key, f"the same header as edge.headers.{seen[lower]} (header names ignore case)")
        seen[lower] = name
        if lower in RESERVED_HEADERS:
            raise r.error(key, f"the edge sets this header itself: {RESERVED_HEADERS[lower]}")
        if lower in HOP_HEADERS:
            raise r.error(key, "belongs to the app and to HTTP, not to the edge's headers")
        value = r.string(key, default="")
        if len(value) > 4096 or any(not 32 <= ord(c) < 127 for c in value):
            raise r.error(key, "must be printable ASCII, at most 4096 characters")
        if "$" in value:
            raise r.error(key, "must not contain '$' (nginx would read it as a variable)")
        merged[lower] = (name, value)
    return tuple((name, value) for name, value in merged.values() if value)


# -- TLS ----------------------------------------------------------------------------------
def _tls(r: Reader) -> Tls | None:
    table = r.table("edge.tls", required=False)
    if not table and r.get("edge.tls") is None:
        return None
    cert = r.path("edge.tls.cert", must_exist=True, kind="file")
    key = r.path("edge.tls.key", must_exist=True, kind="file")
    if cert is None:
        raise r.error("edge.tls.cert", "missing: the PEM file of the certificate and its chain")
    if key is None:
        raise r.error("edge.tls.key", "missing: the PEM file of the certificate's private key")
    tls = Tls(
        cert=cert,
        key=key,
        port=r.port("edge.tls.port", default=Tls.port),
        redirect=r.boolean("edge.tls.redirect", default=Tls.redirect),
        hsts_max_age=r.integer("edge.tls.hsts_max_age", default=Tls.hsts_max_age, low=0, high=2 * 365 * 86400),
        hsts_subdomains=r.boolean("edge.tls.hsts_subdomains", default=Tls.hsts_subdomains),
    )
    if tls.hsts_subdomains and not tls.hsts_max_age:
        raise r.error("edge.tls.hsts_subdomains", "needs edge.tls.hsts_max_age above 0")
    if r.check_paths:
        with r.files():
            check_pair(r, tls.cert, tls.key)
    return tls


def _pem(r: Reader, key: str, path: Path) -> str:
    try:
        info = path.stat()
        if info.st_size > MAX_PEM:
            raise r.error(key, f"{path} is larger than 1 MB: not a PEM file")
        data = path.read_bytes()
    except OSError as exc:
        raise r.error(key, f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise r.error(key, f"{path} is not a PEM file (binary DER? convert it with openssl)") from None


def check_pair(r: Reader, cert: Path, key: Path) -> None:
    """The certificate and the key are PEM, the key is private to its owner and unencrypted,
    and the key matches the certificate (the same check nginx makes when it loads them).
    Its dates are checked only where it is installed (check_dates): an expired certificate
    must not stop a rollback, a `down` or a restore."""
    if "-----BEGIN CERTIFICATE-----" not in _pem(r, "edge.tls.cert", cert):
        raise r.error("edge.tls.cert", f"{cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    key_text = _pem(r, "edge.tls.key", key)
    if not re.search(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----", key_text):
        raise r.error("edge.tls.key", f"{key} holds no PEM private key")
    if "ENCRYPTED" in key_text:
        raise r.error("edge.tls.key", f"{key} is encrypted: the edge needs it unencrypted (chmod 600)")
    if key.stat().st_mode & stat.S_IROTH:
        raise r.error("edge.tls.key", f"{key} is readable by every user on this machine: run `chmod 600 {key}`")

    import ssl  # here: only a config with TLS files pays for it

    def no_password() -> bytes:
        raise ValueError("encrypted")

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key), password=no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise r.error("edge.tls.key", f"{key} does not match the certificate in {cert}") from None
        raise r.error("edge.tls.cert", f"{cert} and {key} cannot be loaded together: {exc.reason or exc}") from None
    except (ValueError, OSError) as exc:
        raise r.error("edge.tls.key", f"{key} cannot be loaded: {exc}") from None


def check_dates(r: Reader, cert: Path, *, now: datetime | None = None) -> str | None:
    """The leaf certificate (the first of the PEM) has not expired and is already valid
    (give or take tls.SKEW of clock difference); returns a warning when it expires within
    tls.SOON (14 days), else None. For `deployer up` and `deployer edge reload`."""
    from cryptography import x509  # only where a certificate is installed

    try:
        leaf = x509.load_pem_x509_certificate(_pem(r, "edge.tls.cert", cert).encode())
    except ValueError as exc:
        raise r.error("edge.tls.cert", f"cannot read the validity dates of the certificate in {cert}: {exc}") from None
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    now = now or datetime.now(UTC)
    if now > not_after:
        raise r.error("edge.tls.cert", f"the certificate in {cert} expired on {tls_pem.stamp(not_after)}; renew it")
    if now + tls_pem.SKEW < not_before:
        raise r.error(
            "edge.tls.cert",
            f"the certificate in {cert} is not valid before {tls_pem.stamp(not_before)}; "
            "check this machine's clock, or wait until then",
        )
    if not_after - now <= tls_pem.SOON:
        return f"edge.tls.cert: the certificate in {cert} expires on {tls_pem.stamp(not_after)}; renew it soon"
    return None


# -- routes -------------------------------------------------------------------------------
def rate_per_second(rate: str) -> float:
    m = RATE.fullmatch(rate)
    if not m:
        raise ValueError(rate)
    return int(m.group(1)) / (1 if m.group(2) == "s" else 60)


def _routes(r: Reader, services: dict[str, Service]) -> tuple[Route, ...]:
    table = r.table("routes", required=False)
    routes = []
    for prefix, body in table.items():
        where = f'routes."{prefix}"'
        r.seen.add(f"routes.{prefix}")
        if not ROUTE_PREFIX.fullmatch(prefix):
            raise r.error(where, f"not a plain URL path prefix: {prefix!r}")
        if not isinstance(body, dict):
            raise r.error(where, "must be a table of settings (rate_limit, burst, max_conn, upstream, budget)")
        if not body:
            raise r.error(where, f"sets nothing (it takes {', '.join(ROUTE_KEYS)})")
        for k in body:
            if k not in ROUTE_KEYS:
                raise r.error(f"{where}.{k}", f"unknown key (a route takes {', '.join(ROUTE_KEYS)})")
            r.seen.add(f"routes.{prefix}.{k}")
        routes.append(_route(r, where, prefix, body, services))
    routes.sort(key=lambda route: len(route.prefix), reverse=True)
    return tuple(routes)


def _route(r: Reader, where: str, prefix: str, body: dict[str, Any], services: dict[str, Service]) -> Route:
    def rate(k: str) -> str | None:
        v = body.get(k)
        if v is None:
            return None
        if not isinstance(v, str) or not RATE.fullmatch(v.strip()):
            raise r.error(f"{where}.{k}", f"must be a rate such as 5r/s or 300r/m: {v!r}")
        return v.strip()

    def count(k: str, low: int) -> int | None:
        v = body.get(k)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 100000:
            raise r.error(f"{where}.{k}", f"must be a whole number between {low} and 100000")
        return v

    route = Route(
        prefix=prefix,
        rate_limit=rate("rate_limit"),
        burst=count("burst", 0) or Route.burst,
        max_conn=count("max_conn", 1),
        upstream=_upstream(r, f"{where}.upstream", body.get("upstream")),
        budget=rate("budget"),
        budget_burst=count("budget_burst", 0) or Route.budget_burst,
        path_params=body.get("path_params", Route.path_params),
    )
    if not isinstance(route.path_params, bool):
        raise r.error(f"{where}.path_params", "must be true or false")
    if "burst" in body and not route.rate_limit:
        raise r.error(f"{where}.burst", "needs a rate_limit")
    if "budget_burst" in body and not route.budget:
        raise r.error(f"{where}.budget_burst", "needs a budget")
    if route.upstream:
        for s in services.values():
            for p in s.routes:
                if p.startswith(prefix):
                    raise r.error(
                        f"{where}.upstream",
                        f"services.{s.name} routes {p!r}, which this external route would take over "
                        "(an external route's prefix must not cover a service's route)",
                    )
    return route


def _upstream(r: Reader, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise r.error(key, "must be an http:// or https:// URL such as https://gpu.example.com:8443")
    m = UPSTREAM.fullmatch(value)
    if not m or (m.group(3) and not 1 <= int(m.group(3)) <= 65535):
        raise r.error(key, f"must be an http:// or https:// URL of a host and port, with no path: {value!r}")
    return value.rstrip("/")
