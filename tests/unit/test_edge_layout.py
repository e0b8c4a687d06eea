"""The edge's paths and ports live in core/edgelayout.py. The files its image bakes in
(Dockerfile, nginx.conf, the entrypoint, the Lua) are held here to those values: each place
that writes one is listed, and no other place may; the site template is rendered with them."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from deployer.config import parse
from deployer.core import edgelayout as L
from deployer.core import site
from deployer.runtime.swarm_infra import SYNC_HEADER

PACKAGE = Path(__file__).resolve().parents[2] / "deployer"
EDGE = PACKAGE / "assets" / "edge"
STATE = L.STATE.removeprefix(L.HOME + "/")  # the entrypoint names it under $dir

# Each baked file -> every place in it that writes an edge path or port, built from edgelayout.
BAKED = {
    "Dockerfile": [
        f"RUN sed 's#{L.SITE};#{L.SITE}.new;#' /etc/nginx/nginx.conf",
        f"> {L.CANDIDATE}",
        f"mkdir -p {L.STATE} {L.RUN}",
        f"EXPOSE {L.PUBLIC_PORT} {L.HTTPS_PORT} {L.PREVIEW_PORT}",
        f"curl -fsS -o /dev/null http://127.0.0.1:{L.PREVIEW_PORT}/_deployer/edge",
    ],
    "nginx.conf": [
        f"from site.conf.j2 into {L.SITE};",
        f"include {L.RUN}/limits-main.conf;",
        f"include {L.RUN}/limits-events.conf;",
        f"include {L.SITE};",
    ],
    "edge-entrypoint.sh": [
        f"dir={L.HOME}\n",
        f'mkdir -p "$dir/{STATE}" {L.RUN}\n',
        f"rm -f {L.CONTROL}\n",
        f"done < /proc/net/route > {L.GATEWAYS}\n",
        f"> {L.RUN}/limits-main.conf",
        f"> {L.RUN}/limits-events.conf",
        f"if [ ! -s {L.FALLBACK_PEM} ]",
        f"-keyout {L.RUN}/fallback.key -out {L.RUN}/fallback.crt",
        f"&& cat {L.RUN}/fallback.crt {L.RUN}/fallback.key > {L.FALLBACK_PEM}",
        f"&& rm -f {L.RUN}/fallback.crt {L.RUN}/fallback.key)",
        f'"$dir/{STATE}/live"',
        f"server {{ listen {L.PUBLIC_PORT} default_server reuseport;",
        f"server {{ listen {L.PREVIEW_PORT} reuseport;",
        f"listen unix:{L.CONTROL};",
        f"edge-log-relay {L.ACCESS_FIFO} nginx",
    ],
    "lua/deployer/page.lua": [f'local HOME = "{L.HOME}/"'],
    "lua/deployer/state.lua": [f"small files in {L.STATE} (write", f'local DIR = "{L.STATE}/"'],
    "lua/deployer/tls.lua": [
        f"a new folder under {L.TLS}/, point",
        f'local FILE = "{L.TLS}/live/tls.pem"',
        f'local SECRET = "/run/secrets/{L.TLS_SECRET}"',
    ],
    "lua/deployer/sync.lua": [
        f'(role "single": no {L.SYNC_CONF}).',
        f"the internal server (port {L.PREVIEW_PORT}, never",
        f'local CONF = "{L.SYNC_CONF}"',
        f'local TOKEN_FILE = "{L.SYNC_TOKEN}"',
        f"conf.port = tonumber(conf.port) or {L.PREVIEW_PORT}",
        f'local HEADER = "{SYNC_HEADER}"',
    ],
}


def written(text: str) -> list[str]:
    """What of the edge's layout a text still writes."""
    paths = [L.HOME, L.RUN, L.CANDIDATE, L.SYNC_CONF, L.SYNC_TOKEN]
    ports = [L.PREVIEW_PORT, L.HTTPS_PORT, L.PUBLIC_PORT]
    return [p for p in paths if p in text] + [str(p) for p in ports if re.search(rf"(?<![\w.]){p}(?![\w.])", text)]


def baked_files() -> list[Path]:
    return sorted(p for p in EDGE.rglob("*") if p.is_file() and p.name != "site.conf.j2" and p.suffix not in (".pyc",))


def test_each_baked_file_writes_the_layout_where_it_is_listed():
    for name, places in BAKED.items():
        text = (EDGE / name).read_text()
        for place in places:
            assert place in text, f"{name} does not write {place!r}"


def test_no_baked_file_writes_the_layout_anywhere_else():
    assert {p.relative_to(EDGE).as_posix() for p in baked_files()} >= set(BAKED)
    for path in baked_files():
        text = path.read_text()
        for place in BAKED.get(path.relative_to(EDGE).as_posix(), []):
            text = text.replace(place, "")
        assert written(text) == [], f"{path.relative_to(EDGE)} writes the edge's layout outside the places listed"


def render(**edge) -> str:
    raw = tomllib.loads(
        '[project]\nname = "shop"\n[services.web]\nimage = "w"\nport = 3000\nhealth = "/h"\nroutes = ["/"]\n'
        '[database]\nenv_file = "db.env"\n'
    )
    raw["edge"] = edge
    return site.render(parse(raw, PACKAGE / "deployer.toml", check_paths=False), EDGE / "site.conf.j2")


def test_the_site_template_is_rendered_with_the_layout():
    assert written((EDGE / "site.conf.j2").read_text()) == []
    text = render(tls={"cert": "c.pem", "key": "k.pem"})
    listens = re.findall(r"^\s*listen\s+([^;]+);", text, re.M)
    assert listens == [
        f"{L.PUBLIC_PORT} default_server reuseport",
        f"{L.HTTPS_PORT} ssl default_server reuseport",
        f"{L.PREVIEW_PORT} reuseport",
        f"unix:{L.CONTROL}",
    ]
    for line in (f"include {L.GATEWAYS};", f"ssl_certificate {L.FALLBACK_PEM};", f"route state ({L.STATE})"):
        assert line in text
    assert f"access_log {L.ACCESS_FIFO} deployer_json" in render(access_log=True)


def test_no_python_module_writes_the_layout_but_edgelayout():
    """The config's edge.preview_port defaults to the same number as the preview port in the
    container, but it is the host's port: a fact of its own."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "edgelayout.py" or "assets" in path.parts:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str):
                paths = [p for p in written(value) if not p.isdigit()]
                if paths:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {paths}")
            elif value == L.PREVIEW_PORT and "preview_port: int =" not in lines[node.lineno - 1]:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {value}")
    assert found == []
