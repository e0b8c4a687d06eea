"""The edge's site as rendered from the shipped template: HTTPS, the redirect, HSTS,
trusted proxies, security headers, rate and cost limits, external upstreams. (That nginx
accepts it is checked by `nginx -t` in the integration tests.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

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
    return site.render(SimpleNamespace(name="shop", edge=edge, swarm=None), asset("edge", "site.conf.j2"))


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


def refused_by(text: str):
    """The site's $deployer_refused map as nginx reads it: its regular expressions in order,
    the first that matches "<probe flag> <request target>" giving the value."""
    block = text[text.index('map "$deployer_probe $request_uri" $deployer_refused {') :]
    entries = []
    for line in block[: block.index("\n}")].splitlines()[1:]:
        key, value = line.strip().rstrip(";").rsplit(" ", 1)
        if key != "default":
            # nginx's unquoting: \\ is one backslash, \" a quote (site.quote does the reverse)
            regex = re.sub(r'\\([\\"])', r"\1", key[1:-1])
            assert regex.startswith("~")
            entries.append((re.compile(regex[1:]), value == "1"))
    return lambda target, probe="0": next((v for rx, v in entries if rx.search(f"{probe} {target}")), False)


@pytest.mark.parametrize(
    "target, refused",
    [
        ("/api/ai/chat", False),
        ("/api/%61i/chat?x=1", False),
        ("/api/items/b%20c", False),
        ("/api/%E2%9C%93", False),
        ("/api/ai.json", False),
        ("/api/...", False),
        ("/api/ai/chat?next=/a/../b;c=%2f//%00#f", False),  # the query string is not looked at
        ("/app/page;jsessionid=A1", False),  # a route that takes path parameters
        ("/app/;jsessionid=A1?x=/y", False),
        ("/app/x.;a=1;b=2", False),
        ("/app;jsessionid=A1/page", True),  # not at the end of the path
        ("/app/a;x=1/b", True),
        ("/app/..;x=1", True),
        ("/app/..;/admin/", True),
        ("/api/ai;x=1/chat", True),
        ("/api/ai/chat;jsessionid=A1", True),  # a route that does not
        ("/api%2fai/chat", True),
        ("/api%2Fai/chat", True),
        ("/api/%2e%2e/admin", True),
        ("/api/%5c", True),
        ("/api/%252f", True),
        ("/api/%3B", True),
        ("/api/%c0%ae", True),
        ("/api/%0d%0a", True),
        ("/api/%7f", True),
        ("/api/%", True),
        ("/api/%zz", True),
        ("/x/../api/", True),
        ("/api/./ai/", True),
        ("/api/..", True),
        ("/api/.?x", True),
        ("//api/", True),
        ("/api//ai/", True),
        ("/api/ai%20/", True),
        ("/api/%20ai/", True),
        ("/api/ai%20", True),
        ("/api/ai%20?x", True),
        ("/api\\ai", True),
        ("/api/ai#/../x", True),
    ],
)
def test_the_public_servers_refuse_ambiguous_paths(target, refused):
    text = render(Edge(routes=(Route("/api/ai/", rate_limit="5r/s"), Route("/app/", path_params=True))))
    assert refused_by(text)(target) is refused
    if refused:  # the deployer's own probes (from inside the edge) are never refused
        assert refused_by(text)(target, probe="1") is False


def test_the_refusal_is_on_both_public_servers_before_routing_and_not_on_the_preview():
    text = render(FULL)
    servers = text.split("\nserver {")[1:]
    public = [s for s in servers if "listen 80 " in s or "listen 443 " in s]
    assert len(public) == 2
    for server in public:
        assert server.index("if ($deployer_refused) {\n        return 400;") < server.index("location / {")
    preview = next(s for s in servers if "listen 8081 reuseport;" in s)
    assert "$deployer_refused" not in preview
    # without a route that takes them, a path parameter is refused everywhere
    assert refused_by(render(Edge()))("/app/page;jsessionid=A1") is True


def test_the_preview_server_answers_only_the_deployers_own_paths():
    text = render(Edge())
    preview = text[text.index("listen 8081 reuseport;") :]
    assert "if ($deployer_admin_refused) {\n        return 444;" in preview  # closed, no answer
    assert "    127.0.0.1 1;\n    include /run/deployer/gateways.geo;" in text  # execs, and the host
    assert "/_deployer/(sync|metrics" not in text  # one host: no other edge talks to it
    swarm = site.render(SimpleNamespace(name="shop", edge=Edge(), swarm=object()), asset("edge", "site.conf.j2"))
    assert '"~^0 /_deployer/(sync|metrics|page/figures)$" 0;' in swarm  # the replicas' sync, with the token


def test_a_cap_of_requests_per_client_on_the_public_servers_only():
    text = render(Edge())
    assert "limit_conn_zone $deployer_client_key zone=deployer_client:10m;" in text
    public, preview = text[: text.index("listen 8081 reuseport;")], text[text.index("listen 8081 reuseport;") :]
    assert public.count("limit_conn deployer_client 512;") == 1 and "limit_conn_status 429;" in public
    assert "limit_conn" not in preview
    assert "error_page 500 = @deployer_no_room;" in public  # a full tmpfs is a 503, not a 500
    both = render(FULL)  # HTTP and HTTPS, with route limits (one limit_conn_status per server)
    assert both.count("limit_conn deployer_client 512;") == 2 and both.count("limit_conn_status 429;") == 2
    assert "deployer_client" not in render(Edge(max_client_conn=0))


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


def request_id_of(text: str):
    """The site's $deployer_request_id map as nginx reads it: the client's X-Request-ID when
    it matches the one regular expression, else nginx's own id."""
    block = text[text.index("map $http_x_request_id $deployer_request_id {") :]
    lines = [line.strip() for line in block[: block.index("\n}")].splitlines()[1:]]
    assert lines[1] == "default $request_id;"
    key, value = lines[0].rsplit(" ", 1)
    assert value == "$http_x_request_id;" and key[:2] == '"~' and key[-1] == '"' and "\\" not in key
    keep = re.compile(key[2:-1])
    return lambda sent: sent if keep.search(sent) else "<edge's own>"


@pytest.mark.parametrize(
    "sent, kept",
    [
        ("0123456789abcdef0123456789abcdef", True),
        ("a", True),
        ("req-1.2_3", True),
        ("A" * 200, True),
        ("", False),
        ("A" * 201, False),
        ("req:4", False),
        ("a b", False),
        ('a"b', False),
        ("a,b", False),  # two X-Request-ID headers, as nginx joins them
        ("a/b", False),
        ("ü", False),
    ],
)
def test_a_clients_request_id_is_kept_only_when_it_is_short_and_plain(sent, kept):
    assert request_id_of(render(Edge()))(sent) == (sent if kept else "<edge's own>")


def test_every_proxied_request_and_every_answer_carries_the_request_id():
    text = render(FULL)
    # A proxy_set_header in a location drops all of its server's: each place that sets the
    # forwarded headers (the three servers, and the external route's location in HTTP and
    # HTTPS) sets the id.
    assert text.count("proxy_set_header Host ") == 5
    assert text.count("proxy_set_header X-Request-ID $deployer_request_id;") == 5
    servers = text.split("\nserver {")[1:]
    proxying = [s for s in servers if "proxy_pass" in s]
    assert len(proxying) == 3
    for server in proxying:
        assert "\n    add_header X-Request-ID $deployer_request_id always;" in server
        assert "\n    proxy_hide_header X-Request-ID;" in server  # an app's own is not sent twice
    # at server level only: an add_header (or proxy_hide_header) in a location would drop them
    assert not re.search(r"^ {8,}(add_header|proxy_hide_header) ", text, flags=re.M)


def test_the_access_log_line_is_json_with_the_id_the_route_and_the_upstream_times():
    text = render(FULL)
    start = text.index("log_format deployer_json escape=json")
    line = "".join(re.findall(r"'([^']*)'", text[start : text.index("';\n", start) + 1]))
    numbers = {"status": "200", "request_time": "0.012", "bytes_sent": "345"}
    logged = json.loads(re.sub(r"\$([a-z_0-9]+)", lambda m: numbers.get(m[1], m[1]), line))
    assert logged == {
        "time": "time_iso8601", "request_id": "deployer_request_id", "route": "deployer_route",
        "prefix": "deployer_prefix", "colour": "deployer_colour", "release": "deployer_release",
        "service": "deployer_service", "method": "request_method", "path": "uri", "status": 200,
        "connect_time": "upstream_connect_time", "header_time": "upstream_header_time",
        "upstream_time": "upstream_response_time", "time_total": 0.012, "bytes": 345,
    }  # fmt: skip
    # The router's variables are declared where nobody asks: "" where it set none. An
    # external route names its prefix itself.
    assert 'set $deployer_prefix "";' in text and 'set $deployer_prefix "/ai/";' in text
