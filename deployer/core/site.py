"""The edge's nginx site, rendered from its jinja2 template (pure).

The site holds what changes only with the config (listeners, TLS, limits, headers,
timeouts, the upstream pool); nothing about which release serves, so a release never
renders it. The template gets `edge` (the config's [edge]), `config`, `project` and
`site`: what the template needs already worked out (zones, maps, quoted values).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from deployer.core import edgelayout, names

# Where the edge container keeps what the site refers to (and core/edgelayout.py).
ACME_ROOT = "/srv/acme"  # edge.acme_webroot, mounted read-only
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are OpenSSL's defaults).
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


def quote(value: str) -> str:
    """A string as one nginx config token, in double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A request path (what precedes the first "?") that an app server may read otherwise than
# nginx, which routes and limits on its own reading ($uri), is refused with 400 by the
# public servers before routing (docs/security.md lists the forms). The map's key is
# "<probe flag> <target as the client sent it>" ($request_uri); its expression reads the
# path once, without backtracking: runs of plain characters, and each "/" and "%" checked
# against what follows it. A path it cannot read to its "?" or its end holds a refused
# form. Python's re reads these expressions as nginx's PCRE does (tests/unit/test_site.py).
PLAIN = r"[^?\x5c#/%]++"  # not a backslash (a separator to some servers), nor "#" (nginx's path ends there)
SLASH = r"/(?!/|\.\.?(?:[/;?#]|$)|%20)"  # a "/" before no empty or dot segment ("/..;/" too), and no space
# an escape, but not of a control character, "%", ".", "/", ";" or a backslash, nor an
# overlong UTF-8 byte (%c0%ae is "." to a lax decoder), nor a space that ends a segment
ESCAPE = r"%(?![01]|7[Ff]|2[5EeFf]|3[Bb]|5[Cc]|[Cc][01]|20(?:[/;?#]|$))[0-9A-Fa-f]{2}"
REFUSE_AMBIGUOUS = quote(f"~^0 (?:{PLAIN}|{SLASH}|{ESCAPE})*+[^?]")
# A path parameter (";name=value") is refused too, except at the end of a path under a
# route that takes them (path_params). The deployer's own probes (flag 1) pass.
REFUSE_PATH_PARAM = quote("~^0 [^?;]*+;")


# A request id (X-Request-ID) the edge keeps: 1 to 200 characters of [A-Za-z0-9._-]. Any
# other (none, empty, too long, other characters) is replaced by nginx's $request_id (32 hex
# digits). Header values hold no newline, before which PCRE's `$` would also match.
REQUEST_ID = quote("~^[A-Za-z0-9._-]{1,200}$")


def path_params(prefix: str) -> str:
    """The map key that lets a path under `prefix` end in path parameters: after the
    prefix, a ";" with no "/" after it (up to the query), as a servlet container appends
    ";jsessionid=...". A servlet container then reads the path as nginx does, up to that
    ";", so both take the same route and the same limit."""
    return quote("~^0 " + _literal(prefix) + r"[^?;]*+;[^?/]*+(?:\?|$)")


def _literal(prefix: str) -> str:
    return re.escape(prefix).replace("\\/", "/")


@dataclass(frozen=True)
class Limit:
    """A route's rate, connection and budget limits, as the site renders them."""

    n: int
    prefix: str
    regex: str  # matches "<probe flag> <uri>" for requests under the prefix, from users
    rate: str | None
    burst: int
    max_conn: int | None
    budget: str | None
    budget_burst: int
    retry_after: int  # seconds a client told 429 should wait


@dataclass(frozen=True)
class External:
    """A route to an upstream outside the releases."""

    n: int
    prefix: str
    upstream: str
    https: bool


@dataclass(frozen=True)
class Header:
    """A response header the edge adds."""

    n: int
    name: str
    upstream_var: str  # $upstream_http_<name>: the app's own value wins
    value: str  # quoted


@dataclass(frozen=True)
class Site:
    """Everything the site template is rendered with."""

    server_names: str
    limits: tuple[Limit, ...]
    external: tuple[External, ...]
    headers: tuple[Header, ...]
    path_params: tuple[str, ...]  # map entries (quoted) of the routes that take path parameters
    hsts: str  # quoted header value, or ""
    redirect: bool
    redirect_port: str  # ":8443", or "" for 443 (or a port Docker picks)
    acme_root: str
    swarm: bool = False  # the other edges sync the route state and the metrics on the preview server
    fallback_pem: str = edgelayout.FALLBACK_PEM
    ciphers: str = CIPHERS
    ca_bundle: str = CA_BUNDLE
    refuse_ambiguous: str = REFUSE_AMBIGUOUS  # map keys of $deployer_refused
    refuse_path_param: str = REFUSE_PATH_PARAM
    request_id: str = REQUEST_ID  # the map key of a client's X-Request-ID that the edge keeps
    # The grammar of core/names.py, as PCRE: the preview server's /_deployer/health/ paths.
    colour: str = "|".join(names.COLOURS)
    release_id: str = names.RELEASE_ID.pattern
    service_name: str = names.SERVICE_NAME.pattern
    # The edge's ports, socket and files (core/edgelayout.py).
    public_port: int = edgelayout.PUBLIC_PORT
    https_port: int = edgelayout.HTTPS_PORT
    preview_port: int = edgelayout.PREVIEW_PORT
    control: str = edgelayout.CONTROL
    state: str = edgelayout.STATE
    gateways: str = edgelayout.GATEWAYS
    access_fifo: str = edgelayout.ACCESS_FIFO


def build(edge, *, swarm: bool = False) -> Site:
    limits = []
    for n, r in enumerate((r for r in edge.routes if r.limited), 1):
        rates = [x for x in (r.rate_limit, r.budget) if x]
        limits.append(
            Limit(
                n=n,
                prefix=r.prefix,
                regex="~^0 " + _literal(r.prefix),
                rate=r.rate_limit,
                burst=r.burst,
                max_conn=r.max_conn,
                budget=r.budget,
                budget_burst=r.budget_burst,
                retry_after=_retry_after(rates),
            )
        )
    external = tuple(
        External(n, r.prefix, r.upstream, r.upstream.startswith("https://"))
        for n, r in enumerate((r for r in edge.routes if r.upstream), 1)
    )
    headers = tuple(
        Header(n, name, "$upstream_http_" + name.lower().replace("-", "_"), quote(value))
        for n, (name, value) in enumerate(edge.headers, 1)
    )
    tls = edge.tls
    hsts = ""
    if tls and tls.hsts_max_age:
        hsts = quote(f"max-age={tls.hsts_max_age}" + ("; includeSubDomains" if tls.hsts_subdomains else ""))
    return Site(
        server_names=" ".join(edge.domains) or "_",
        limits=tuple(limits),
        external=external,
        headers=headers,
        path_params=tuple(path_params(r.prefix) for r in edge.routes if r.path_params),
        hsts=hsts,
        redirect=bool(tls and tls.redirect),
        redirect_port=f":{tls.port}" if tls and tls.port not in (0, 443) else "",
        acme_root=ACME_ROOT,
        swarm=swarm,
    )


def _retry_after(rates: list[str]) -> int:
    waits = [1]
    for rate in rates:
        count, unit = re.fullmatch(r"([0-9]+)r/([sm])", rate).groups()  # type: ignore[union-attr]
        waits.append(math.ceil((1 if unit == "s" else 60) / int(count)))
    return max(waits)


def render(config, template: Path) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return env.get_template(template.name).render(
        project=config.name, edge=config.edge, config=config, site=build(config.edge, swarm=bool(config.swarm))
    )


_LISTEN = re.compile(r"^\s*listen\s+([^;]+);", re.MULTILINE)


def cannot_drain(rendered: str) -> str:
    """Why an edge of this site could not drain when it is replaced ('' when it can): its
    control server needs /drain, and each server that routes needs @deployer_last."""
    if "location = /drain" not in rendered:
        return "it has no `location = /drain` on its control socket"
    servers = re.split(r"(?m)^server \{", rendered)[1:]
    if any('deployer.router").route(' in s and "location @deployer_last" not in s for s in servers):
        return "a server that routes with deployer.router has no `location @deployer_last`"
    return ""


def without_reuseport(rendered: str) -> list[str]:
    """The TCP `listen` directives of a rendered site that lack `reuseport`: a new edge could
    not listen on their ports beside the one it replaces (flows/edge_roll.py)."""
    found = (m.strip() for m in _LISTEN.findall(rendered))
    return [m for m in found if not m.startswith("unix:") and "reuseport" not in m.split()]
