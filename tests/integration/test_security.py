"""Security at the edge, through the real edge: HTTPS with HTTP/2, the redirect and HSTS,
a certificate renewed under load with no failed request, the ACME challenge folder,
forwarded headers believed only from trusted proxies, security headers, rate and cost
limits (429 + Retry-After for the excess, 2xx for everyone else), an external upstream
with a global budget, and a request target that reaches the app as sent, or is refused
when an app server could read its path otherwise than the edge."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest
from edge_clients import (
    HOST,
    ContainerClient,
    HttpsLoad,
    curl,
    der,
    install,
    make_cert,
    peer_der,
    request,
    tls_context,
)

pytestmark = pytest.mark.docker


EDGE = """
domains = ["app.test"]
acme_webroot = "acme"
trusted_proxies = [{trusted}]
[edge.headers]
"Content-Security-Policy" = "default-src 'self'"
"Referrer-Policy" = ""
[edge.tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
port = 0
hsts_max_age = 600
"""

ROUTES = """
[routes."/api/ai/"]
rate_limit = "5r/s"
burst = 5
max_conn = 2

[routes."/gpu/"]
upstream = "http://{gpu}:8080"
rate_limit = "50r/s"
burst = 50
budget = "30r/m"
budget_burst = 2
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    folder = tmp_path_factory.mktemp("security")
    s = Stack(f"t{uuid.uuid4().hex[:8]}", folder, docker_client, test_app_image)
    clients: list[ContainerClient] = []
    try:
        (folder / "tls").mkdir()
        (folder / "acme" / ".well-known" / "acme-challenge").mkdir(parents=True)
        s.first = make_cert(folder, "first")
        s.second = make_cert(folder, "second")
        s.cert, s.key = folder / "tls" / "cert.pem", folder / "tls" / "key.pem"
        install(*s.first, s.cert, s.key)
        s.gpu = f"{s.name}-gpu"

        def configure(trusted: str) -> None:
            s.write_config(edge=EDGE.format(trusted=trusted), extra=ROUTES.format(gpu=s.gpu))
            s.config.write_text(s.config.read_text().replace("expose_colour = true", "expose_colour = false"))

        configure("")
        s.release_all("v1")
        # The fake GPU server: a test-app container the edge reaches on its network.
        docker_client.containers.run(
            test_app_image,
            name=s.gpu,
            network=f"{s.name}-edge",
            environment={"APP_SERVICE": "gpu", "PORT": "8080"},
            labels={"deployer.project": s.name},
            detach=True,
        )
        # A load balancer in front of the edge: the only trusted proxy. Changing the
        # trusted proxies is an `up` that renders and reloads the site.
        s.lb = ContainerClient(s, name="lb")
        s.other = ContainerClient(s, name="other")
        clients += [s.lb, s.other]
        configure(f'"{s.lb.ip}"')
        s.ok("up")
        s.https = s.port(443)
        yield s
    finally:
        for c in clients:
            c.remove()
        s.destroy()


def https(stack, path: str, *, ctx=None, **kw):
    return request(stack.https, path, ctx=ctx or tls_context(stack.first[0]), **kw)


def http_raw(port: int, path: str, **kw):
    return request(port, path, **kw)


def test_https_answers_with_http2_and_the_uploaded_certificate(stack):
    out = curl(
        "--http2",
        "--cacert",
        str(stack.first[0]),
        "--resolve",
        f"{HOST}:{stack.https}:127.0.0.1",
        "-w",
        "\n%{http_version}",
        f"https://{HOST}:{stack.https}/api/version",
    )
    body, _, version = out.stdout.rpartition("\n")
    assert version == "2", out
    answer = json.loads(body)
    assert answer["service"] == "backend" and answer["version"] == "v1"
    # The app learns the request came over HTTPS, for the host it was sent to.
    assert answer["forwarded"]["x-forwarded-proto"] == "https"
    assert answer["forwarded"]["x-forwarded-host"] == HOST
    ctx = tls_context(stack.first[0])
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", stack.https)), server_hostname=HOST) as s:
        assert s.selected_alpn_protocol() == "h2"
        assert s.getpeercert(binary_form=True) == der(stack.first[0])


def test_plain_http_redirects_except_the_acme_challenge(stack):
    live = stack.port(80)
    r, _ = http_raw(live, "/api/version?x=1")
    assert r.status == 301 and r.getheader("Location") == f"https://{HOST}/api/version?x=1"
    r, _ = http_raw(live, "/api/items", method="POST", headers={"Content-Length": "0"})
    assert r.status == 308 and r.getheader("Location") == f"https://{HOST}/api/items"
    assert r.getheader("Strict-Transport-Security") is None  # HSTS only over HTTPS
    token = stack.folder / "acme" / ".well-known" / "acme-challenge" / "tok-123"
    token.write_text("tok-123.key-authorisation")
    r, body = http_raw(live, "/.well-known/acme-challenge/tok-123")
    assert r.status == 200 and body == b"tok-123.key-authorisation"
    assert http_raw(live, "/.well-known/acme-challenge/missing")[0].status == 404


def test_hsts_and_security_headers_on_every_public_answer(stack):
    for path in ("/api/version", "/no/such/route/../x", "/_deployer/metrics"):
        r, _ = https(stack, path)
        assert r.getheader("Strict-Transport-Security") == "max-age=600"
        assert r.getheader("X-Content-Type-Options") == "nosniff"
        assert r.getheader("X-Frame-Options") == "SAMEORIGIN"
        assert r.getheader("Content-Security-Policy") == "default-src 'self'"
        assert r.getheader("Referrer-Policy") is None  # removed by edge.headers
        assert r.getheader("X-Deployer-Colour") is None  # only on the preview route
    assert https(stack, "/_deployer/metrics")[0].status == 404


def test_forwarded_headers_are_believed_only_from_trusted_proxies(stack):
    spoof = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}
    r, body = https(stack, "/api/version", headers=spoof)
    seen = json.loads(body)["forwarded"]
    assert "6.6.6.6" not in seen["x-forwarded-for"] and seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == HOST and seen["x-real-ip"] == seen["x-forwarded-for"]
    # The trusted load balancer ended TLS: plain HTTP to the edge, no redirect, and the
    # client's address and scheme reach the app.
    lb = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "Host": HOST}
    (answer,) = stack.lb.run([{"path": "/api/version", "headers": lb}])
    assert answer["status"] == 200, answer
    seen = answer["body"]["forwarded"]
    assert seen["x-forwarded-for"] == f"203.0.113.9, {stack.lb.ip}" and seen["x-forwarded-proto"] == "https"
    assert seen["x-real-ip"] == "203.0.113.9"
    # The same headers from an untrusted container are replaced (and it is redirected).
    (answer,) = stack.other.run([{"path": "/api/version", "headers": lb}])
    assert answer["status"] == 301


def test_encoded_characters_reach_the_app_as_sent_or_are_refused(stack):
    """Encoded characters stay encoded on the way to the app: %0d%0a cannot split the
    request sent to it. In a path, the public servers refuse it (and every other form an
    app server may read otherwise than the edge: tests/integration/test_paths.py); in
    the query string, and on the preview route, it passes on as sent."""
    target = "/api/a%0d%0aX-Injected:%20yes/b%20c?q=%0d%0a"
    for refused in (target, "/api/ai;x=y/chat", "/api/ai/..;/x"):
        r, body = https(stack, refused)
        assert r.status == 400 and b"X-Injected" not in body, (refused, r.status)
        assert r.getheader("Strict-Transport-Security") == "max-age=600"  # the public headers still
        assert r.getheader("X-Content-Type-Options") == "nosniff"
    r, _ = http_raw(stack.port(80), "/api/ai;x=y/chat")
    assert r.status == 301  # plain HTTP is redirected first, to the same refusal over HTTPS
    passed = "/api/a%20b/c%20d?q=%0d%0aX-Injected:%20yes"
    r, body = https(stack, passed)
    assert r.status == 200 and json.loads(body)["raw"] == passed
    preview = stack.port(8081)
    # Through the preview route (not refused): once v2 is live (green), the preview is blue (v1).
    stack.tag("v2")
    stack.ok("release", "v2", "--no-backup")
    r, body = http_raw(preview, target)
    assert r.status == 200 and json.loads(body)["raw"] == target and json.loads(body)["version"] == "v1"
    assert r.getheader("X-Deployer-Colour") == "blue"  # the preview route shows who answered
    r, body = https(stack, passed)
    assert json.loads(body)["raw"] == passed and json.loads(body)["version"] == "v2"


def test_the_excess_gets_429_with_retry_after_and_everyone_else_2xx(stack):
    time.sleep(1.5)  # let the buckets refill from earlier tests
    other: list[dict] = []
    calm = threading.Thread(
        target=lambda: other.extend(
            stack.lb.run(
                [
                    {
                        "path": "/api/ai/chat",
                        "count": 6,
                        "interval": 0.3,
                        "headers": {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"},
                    }
                ]
            )
        )
    )
    calm.start()
    ctx = tls_context(stack.first[0])
    conn = http.client.HTTPSConnection("127.0.0.1", stack.https, context=ctx, timeout=10)
    statuses, retry, ids = [], set(), set()
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and len(statuses) < 400:
        conn.request("GET", "/api/ai/chat", headers={"Host": HOST})
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
        if r.status == 429:
            retry.add(r.getheader("Retry-After"))
            ids.add(r.getheader("X-Request-ID"))  # the edge's own answer has an id too
        else:
            assert r.getheader("Retry-After") is None
    # The flooding client still reaches every route without a limit.
    conn.request("GET", "/api/version", headers={"Host": HOST})
    unlimited = conn.getresponse()
    unlimited.read()
    conn.close()
    calm.join(timeout=30)
    ok = statuses.count(200)
    assert statuses.count(429) >= 20 and set(statuses) == {200, 429}, statuses[:20]
    assert ok <= 6 + 5 * 3, ok  # burst, then 5 per second
    assert retry == {"1"}
    assert len(ids) == statuses.count(429) and all(re.fullmatch("[0-9a-f]{32}", i or "") for i in ids), ids
    assert unlimited.status == 200
    assert [a["status"] for a in other] == [200] * 6, other  # another client, behind the trusted LB


def test_max_conn_limits_requests_in_flight_per_client(stack):
    time.sleep(1.5)
    results: list[int] = []

    def slow() -> None:
        r, _ = https(stack, "/api/ai/slow")
        results.append(r.status)

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [200, 200, 429, 429], results


def test_the_budget_caps_the_external_upstream_across_clients(stack):
    """Two clients (this machine, and one behind the load balancer) share the budget of
    the fake GPU server's route; each of them is far below its own rate limit."""
    start = time.monotonic()
    others: list[dict] = []
    behind_lb = {"path": "/gpu/infer", "count": 10, "headers": {"Host": HOST, "X-Forwarded-Proto": "https"}}
    worker = threading.Thread(target=lambda: others.extend(stack.lb.run([behind_lb])))
    worker.start()
    mine = []
    for _ in range(10):
        r, body = https(stack, "/gpu/infer")
        mine.append((r.status, r.getheader("Retry-After"), body))
    worker.join(timeout=30)
    elapsed = time.monotonic() - start
    answered = [json.loads(b) for s, _, b in mine if s == 200] + [a["body"] for a in others if a["status"] == 200]
    assert 1 <= len(answered) <= 1 + 2 + int(elapsed / 2) + 1, (len(answered), elapsed)
    assert all(a["service"] == "gpu" and a["raw"] == "/gpu/infer" for a in answered)
    assert all(re.fullmatch("[0-9a-f]{32}", a["forwarded"]["x-request-id"]) for a in answered)  # external too
    refused = [retry for s, retry, _ in mine if s == 429] + [a["retry"] for a in others if a["status"] == 429]
    assert len(refused) >= 20 - len(answered) and set(refused) == {"2"}, (mine, others)


def test_a_renewed_certificate_is_picked_up_under_load_with_no_failure(stack):
    """Keep-alive HTTPS clients, a new connection (and handshake) per request, and an HTTP/2
    client, while `deployer edge reload` installs a new certificate and key."""
    trust = tls_context(stack.first[0], stack.second[0])
    bundle = stack.folder / "trust.pem"
    bundle.write_text(stack.first[0].read_text() + stack.second[0].read_text())
    url = f"https://{HOST}:{stack.https}/api/version"
    h2 = subprocess.Popen(
        ["curl", "-s", "--http2", "--cacert", str(bundle), "--resolve", f"{HOST}:{stack.https}:127.0.0.1"]
        + ["--rate", "20/s", "-w", "%{http_code} %{http_version}\\n"]
        + ["-o", "/dev/null", url] * 80,
        stdout=subprocess.PIPE,
        text=True,
    )
    load = HttpsLoad(stack.https, trust, keepalive=3, fresh=2)
    time.sleep(1.0)
    install(*stack.second, stack.cert, stack.key)
    reloaded = stack.ok("edge", "reload")
    assert "certificate installed" in reloaded.stderr
    assert peer_der(stack.https, trust) == der(stack.second[0])  # the next handshake has it
    time.sleep(1.0)
    load.finish()
    h2_out, _ = h2.communicate(timeout=60)
    assert load.failures == [], load.failures[:5]
    assert load.counts["keepalive"] > 20 and load.counts["fresh"] > 10, load.counts
    assert h2_out.split("\n")[:-1] == ["200 2"] * 80, h2_out[-300:]
    # A key that does not match the certificate is bad input: exit 2, and nothing changes.
    stack.key.write_bytes(stack.first[1].read_bytes())
    bad = stack.cli("edge", "reload")
    assert bad.returncode == 2 and "edge.tls.key" in bad.stderr and "does not match" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    assert peer_der(stack.https, trust) == der(stack.second[0])
    install(*stack.second, stack.cert, stack.key)
