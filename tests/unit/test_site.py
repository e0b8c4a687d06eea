"""The nginx site template renders every route for both servers, with no colour baked in."""

from __future__ import annotations

from pathlib import Path

from deployer import config, site

MINIMAL = {
    "project": {"name": "shop"},
    "services": {
        "backend": {"image": "b", "port": 8080, "health": "/actuator/health"},
        "frontend": {"image": "f", "port": 3000, "health": "/healthz"},
    },
}


def load(tmp_path: Path, **edge):
    (tmp_path / "db.env").write_text("")
    raw = dict(MINIMAL, database={"env_file": "db.env"}, edge=edge)
    return config.parse(raw, tmp_path / "deployer.toml")


def test_routes_follow_the_live_and_preview_colour(tmp_path):
    text = site.render(load(tmp_path))
    # Public routes go to the live release's own alias (backend-green-<release id>).
    assert text.count("proxy_pass http://backend-$deployer_live_host:8080;") == 2  # /api/ and /actuator/
    assert text.count("proxy_pass http://frontend-$deployer_live_host:3000;") == 1
    assert text.count("proxy_pass http://backend-$deployer_preview_host:8080;") == 2
    assert text.count('if ($deployer_live = "") { return 503') == 3
    assert "location /api/ {" in text and "location / {" in text
    assert "add_header X-Deployer-Colour $deployer_live always;" in text
    # No colour is baked into the config: a switch never needs a reload.
    assert "http://backend-blue" not in text and "http://backend-green" not in text


def test_direct_colour_routes_on_preview_only(tmp_path):
    text = site.render(load(tmp_path))
    live, preview = text.split("# Preview:")
    assert "/_deployer/" not in live
    # One release of a colour (/_deployer/blue-1a2b3c4d/backend/...) or the colour (/_deployer/blue/backend/...).
    assert (
        'location ~ "^/_deployer/(?<target_colour>blue|green)(?<target_release>-[0-9a-f]{8})?/backend(?<target_path>/.*)$"'
        in preview
    )
    assert "proxy_pass http://frontend-$target_colour$target_release:3000$target_path$is_args$args;" in preview


def test_custom_template(tmp_path):
    (tmp_path / "mine.j2").write_text("# {{ project }}: {% for r in routes %}{{ r.path }}={{ r.service }} {% endfor %}\n")
    text = site.render(load(tmp_path, template="mine.j2"))
    assert text == "# shop: / =frontend /actuator/=backend /api/=backend \n".replace("/ =", "/=")
