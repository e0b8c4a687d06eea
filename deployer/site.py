"""Render the edge's nginx site config from a jinja2 template (pure)."""

from __future__ import annotations

from pathlib import Path

from deployer.assets import asset
from deployer.config import Config


def render(config: Config, template: Path | None = None) -> str:
    import jinja2

    path = template or config.edge.template or asset("nginx", "site.conf.j2")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    routes = sorted(
        ({"path": p, "service": s.name, "port": s.port} for s in config.services.values() for p in s.routes),
        key=lambda r: r["path"],
    )
    return env.get_template(path.name).render(
        project=config.name,
        routes=routes,
        services=[{"name": s.name, "port": s.port} for s in config.services.values()],
        max_body="20m",
        read_timeout="300s",
    )
