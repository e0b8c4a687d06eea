"""The edge's nginx site, rendered from its jinja2 template (pure).

The site holds what changes only with the config (listeners, limits, timeouts, the
upstream pool); nothing about which release serves, so a release never renders it.
"""

from __future__ import annotations

from pathlib import Path


def render(config, template: Path) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template.name).render(project=config.name, edge=config.edge, config=config)
