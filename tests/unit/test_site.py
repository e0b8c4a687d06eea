"""The edge's site as rendered from the shipped template: HTTPS, the redirect, HSTS,
trusted proxies, security headers, rate and cost limits, external upstreams. (That nginx
accepts it is checked by `nginx -t` in the integration tests.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from deployer.assets import asset
from deployer.config.model import Edge, Route, Tls
from deployer.core import site, tls

FULL = Edge(
    domains=("app.test", "www.app.test"),
    trusted_proxies=("10.0.0.0/8",),
    acme_webroot="/srv/www/acme",
    headers=(("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", 'default-src "self"')),
    tls=Tls(cert=Path("/c"), key=Path("/k"), port=8443, hsts_max_age=600, hsts_subdomains=True),
    routes=(
        Route("/api/ai/", rate_limit="5r/s", burst=10, max_conn=4),
        Route("/ai/", rate_limit="2r/s", upstream="https://gpu.example.invalid:8443", budget="30r/m"),
    ),
)


def render(edge: Edge) -> str:
    return site.render(SimpleNamespace(name="shop", edge=edge), asset("edge", "site.conf.j2"))


def test_plain_site_has_no_https_no_limits_and_default_headers():
    text = render(Edge())
    assert "listen 443" not in text and "$deployer_redirect" not in text
    assert "limit_req" not in text and "resolver" not in text and "acme-challenge/ {" not in text
    assert "add_header X-Frame-Options $deployer_header_3 always;" in text
    assert 'map $upstream_http_x_frame_options $deployer_header_3 {\n    "" "SAMEORIGIN";' in text
    assert "server_name _;" in text
    assert "listen 80 default_server reuseport;" in text  # a listening socket per worker
    # No proxy is trusted: the forwarded headers are the edge's own, straight from what it
    # saw (no map), and what a client sent is never passed on.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text and 'proxy_set_header Forwarded "";' in text
    assert "$deployer_forwarded_for;" not in text and "$proxy_add_x_forwarded_for" not in text
    assert "set_real_ip_from" not in text


def test_https_with_http2_redirect_and_hsts():
    text = render(FULL)
    https = text[text.index("listen 443 ssl") :]
    assert "http2 on;" in https and 'ssl_certificate_by_lua_block { require("deployer.tls").certificate() }' in https
    assert 'add_header Strict-Transport-Security "max-age=600; includeSubDomains" always;' in https
    http = text[text.index("listen 80 default_server") : text.index("listen 443 ssl")]
    assert "Strict-Transport-Security" not in http
    assert "return 301 https://$host:8443$request_uri;" in http and "return 308 https://$host:8443$request_uri;" in http
    assert "server_name app.test www.app.test;" in text
    assert "root /srv/acme;" in http  # the folder of the Docker host is mounted there
    assert '"~^127\\.0\\.0\\.1 " 0;' in text  # the deployer's probes are never redirected
    assert "set_real_ip_from 10.0.0.0/8;" in text and "real_ip_recursive on;" in text
    # behind a trusted proxy, its X-Forwarded-* is believed (through the maps)
    assert "proxy_set_header X-Forwarded-For $deployer_forwarded_for;" in text


def test_limits_and_external_upstreams():
    text = render(FULL)
    assert '"~^0 /api/ai/" "/api/ai/";' in text and '"~^0 /ai/" "/ai/";' in text
    assert text.index('"~^0 /api/ai/"') < text.index('"~^0 /ai/"')  # longest prefix first
    assert "limit_req_zone $deployer_rate_key_1 zone=deployer_rate_1:10m rate=5r/s;" in text
    assert "limit_req zone=deployer_rate_1 burst=10 nodelay;" in text
    assert "limit_conn deployer_conn_1 4;" in text
    assert "limit_req_zone $deployer_budget_key_2 zone=deployer_budget_2:1m rate=30r/m;" in text
    assert '    "/ai/" 2;' in text  # Retry-After: one request's worth of the budget
    assert "limit_req_status 429;" in text
    assert 'set $deployer_external_1 "https://gpu.example.invalid:8443";' in text
    assert "proxy_ssl_verify on;" in text and "location ^~ /ai/ {" in text
    assert 'map $upstream_http_content_security_policy $deployer_header_2 {\n    "" "default-src \\"self\\"";' in text


def test_site_values():
    built = site.build(FULL)
    assert [limit.retry_after for limit in built.limits] == [1, 2]
    assert site.quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert site.build(Edge(tls=Tls(cert=Path("/c"), key=Path("/k"), port=0))).redirect_port == ""


def test_the_certificate_travels_as_one_file_named_by_its_content():
    pem = tls.bundle("-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n", "KEY\n")
    assert pem.endswith(b"CERTIFICATE-----\nKEY\n")
    gen = tls.generation(pem)
    assert gen.startswith("gen-") and tls.generation(pem) == gen
    script = tls.install(gen)
    assert "KEY" not in script and "--data-binary @" in script and "mv -fT" in script


def test_every_tcp_listener_can_be_shared_with_the_edge_that_replaces_it():
    from deployer.core.site import without_reuseport

    text = render(FULL)
    assert without_reuseport(text) == []  # the shipped site: 80, 443 and 8081 all have reuseport
    # a draining edge answers in @deployer_last (Connection: close) on every server that routes
    assert text.count("location @deployer_last {\n        keepalive_timeout 0;") == 3
    assert "location = /drain" in text
    assert without_reuseport("server {\n    listen 8081;\n    listen unix:/run/x.sock;\n}\n") == ["8081"]
    assert without_reuseport("  listen 80 default_server reuseport;\n") == []
    assert site.cannot_drain(text) == ""
    routes = (
        'server {\n    location / { rewrite_by_lua_block { require("deployer.router").route("live", false) } }\n}\n'
    )
    assert "no `location = /drain`" in site.cannot_drain(routes)
    assert "@deployer_last" in site.cannot_drain(routes + "location = /drain {}\n")
