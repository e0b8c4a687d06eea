"""The edge under load and what it shows: pooled upstream connections that never run out of
ports, the JSON access log, the metrics, and idle clients that cannot starve real ones."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from edge_clients import access_lines

pytestmark = pytest.mark.docker

PORT_RANGE = "61000 61250"  # 251 ports: one connection per request would exhaust them at once


def time_wait(project) -> int:
    """TIME_WAIT sockets in the edge's network namespace."""
    code, out = project.edge.exec_run(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"])
    return sum(1 for line in out.decode().splitlines()[1:] if line.split()[3:4] == ["06"])


def hammer(url: str, clients: int, requests: int, path: str = "/api/version") -> tuple[int, list[str]]:
    """Keep-alive clients that never retry; returns (answered 2xx, failures)."""
    parts = urlsplit(url)
    ok = [0] * clients
    failures: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        for _ in range(requests):
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    ok[i] += 1
                else:
                    failures.append(f"HTTP {r.status}")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return sum(ok), failures


def test_sustained_load_reuses_upstream_connections_and_never_runs_out_of_ports(project, monkeypatch):
    """The regression test of the port exhaustion: the edge's local port range is shrunk to
    251 ports, so a proxy that opens one upstream connection per request fails within a
    few hundred requests. Pooled connections serve thousands with no failure and no growth
    of TIME_WAIT sockets."""
    monkeypatch.setenv("DEPLOYER_TEST_EDGE_PORT_RANGE", PORT_RANGE)
    project.release_all("v1")
    code, out = project.edge.exec_run(["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
    assert out.decode().split() == PORT_RANGE.split()
    before = time_wait(project)
    answered, failures = hammer(project.live_url, clients=8, requests=500)
    after = time_wait(project)
    assert failures == [], failures[:10]
    assert answered == 4000
    assert after - before < 60, f"TIME_WAIT grew from {before} to {after}: upstream connections are not reused"
    # A release under the same load swaps the pool's targets without running out either.
    project.tag("v2")
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=hammer(project.live_url, clients=4, requests=600)))
    worker.start()
    project.ok("release", "v2", "--no-backup")
    worker.join(timeout=300)
    answered, failures = done["result"]
    assert failures == [] and answered == 2400
    assert project.serving() == ("v2", "green")


def test_a_pooled_connection_the_app_closed_costs_a_retry_not_an_answer(shared):
    """An app may close an idle pooled connection without saying so (the JDK's HttpServer
    does past 200 idle ones). The test app's `/drop-next` makes the next request on the
    same connection meet exactly that; the edge sends a GET again on a new connection, so
    the client gets its answer. (A single address took a path in the balancer that raised
    on the retry: a 500.)"""
    project = shared
    parts = urlsplit(project.live_url)
    # One client connection: one edge worker, whose pool hands the connection that just
    # answered /drop-next to the next request.
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    statuses = []
    try:
        for _ in range(10):
            for path in ("/api/drop-next", "/api/version"):
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                statuses.append((path, r.status))
    finally:
        conn.close()
    assert statuses == [("/api/drop-next", 200), ("/api/version", 200)] * 10
    # The edge did meet the closed connections (the test checks the path it meant to): the
    # access log gives each upstream attempt's time, so a retried request has two.
    lines = access_lines(project)
    retried = [x for x in lines if x["path"] == "/api/version" and x["route"] == "live" and "," in x["upstream_time"]]
    assert len(retried) >= 10, [x["upstream_time"] for x in lines if x["path"] == "/api/version"]
    # and a public request's error line (which quotes the query string) is not written
    assert "upstream prematurely closed connection" not in project.edge.logs(stdout=False, stderr=True).decode()


def test_access_log_has_one_json_line_per_request_and_no_secret(shared):
    project = shared
    project.get("/api/logged?token=s3cret-query-value", headers={"Authorization": "Bearer s3cret-header-value"})
    project.get("/api/status/404")
    project.get("/missing-page")
    mine = [x for x in access_lines(project) if x["path"] in ("/api/logged", "/api/status/404", "/missing-page")]
    assert len(mine) == 3
    logged = next(x for x in mine if x["path"] == "/api/logged")
    release_id = next(c for c in project.containers("blue")).labels["deployer.release"]
    assert logged["route"] == "live" and logged["colour"] == "blue" and logged["release"] == release_id
    assert logged["service"] == "backend" and logged["method"] == "GET" and logged["status"] == 200
    assert float(logged["upstream_time"]) >= 0 and logged["time_total"] >= 0 and logged["bytes"] > 0
    assert {x["path"]: x["status"] for x in mine} == {"/api/logged": 200, "/api/status/404": 404, "/missing-page": 200}
    text = project.edge.logs().decode()
    assert "s3cret-query-value" not in text and "s3cret-header-value" not in text


def test_each_request_has_one_id_from_the_client_through_the_app_to_the_access_log(shared):
    """X-Request-ID: a client's own is kept when it is 1 to 200 characters of [A-Za-z0-9._-];
    none, or any other, is replaced by the edge's (32 hex digits). The app gets it, the client
    gets it back once (the test app returns it too), and the request's log line has it with
    the route's prefix and the edge's timing split. The edge's own answers carry it too."""
    project = shared
    sent = {"none": None, "kept": "client-1.2_3", "long": "a" * 201, "colon": "a:b", "space": "a b", "quote": 'a"b'}
    ids = {}
    for case, value in sent.items():
        answer = project.get(f"/api/reqid/{case}", headers={} if value is None else {"X-Request-ID": value})
        got = answer.headers.get_list("x-request-id")
        assert answer.status_code == 200 and len(got) == 1, (case, got)
        assert answer.json()["forwarded"]["x-request-id"] == got[0], case
        ids[f"/api/reqid/{case}"] = got[0]
    assert ids.pop("/api/reqid/kept") == "client-1.2_3"
    assert all(re.fullmatch("[0-9a-f]{32}", x) for x in ids.values()) and len(set(ids.values())) == 5, ids
    ids["/api/reqid/kept"] = "client-1.2_3"
    own = project.get("/_deployer/x", headers={"X-Request-ID": "own-404"})  # nginx's own answer
    assert own.status_code == 404 and own.headers.get_list("x-request-id") == ["own-404"]
    project.ok("maintenance", "on")  # the router's own answer
    try:
        page = project.get("/api/reqid/maintenance")
    finally:
        project.ok("maintenance", "off")
    assert page.status_code == 503 and re.fullmatch("[0-9a-f]{32}", page.headers["x-request-id"])

    logged = {x["path"]: x for x in access_lines(project) if x["path"].startswith(("/api/reqid/", "/_deployer/x"))}
    for path, request_id in ids.items():
        line = logged[path]
        assert line["request_id"] == request_id and (line["route"], line["prefix"]) == ("live", "/api/"), line
        connect, header, upstream = (float(line[k]) for k in ("connect_time", "header_time", "upstream_time"))
        # one clock for the upstream times (monotonic), another for the total (the wall clock,
        # which the host may set back a few ms while the request runs: 0.010 against 0.005 seen)
        assert 0 <= connect <= header <= upstream <= line["time_total"] + 0.05, line
    for path, request_id in (("/_deployer/x", "own-404"), ("/api/reqid/maintenance", page.headers["x-request-id"])):
        line = logged[path]
        assert line["request_id"] == request_id and line["prefix"] == "", line
        assert line["connect_time"] == line["header_time"] == line["upstream_time"] == "", line  # no upstream


def nginx_workers(project) -> dict[str, str]:
    """The edge's nginx workers: pid -> title ("nginx: worker process[ is shutting down]")."""
    script = 'for f in /proc/[0-9]*/cmdline; do printf "%s " "${f#/proc/}"; tr "\\0" " " < "$f"; echo; done'
    out = project.edge.exec_run(["sh", "-c", script]).output.decode()
    return {p.split("/")[0]: t.strip() for p, _, t in (x.partition(" ") for x in out.splitlines()) if "worker" in t}


def reload_nginx(project) -> None:
    """`nginx -s reload`, then wait (bounded) until new workers run and the old ones are gone.
    Until then a client may reuse a keep-alive connection that an old worker closes as it
    quits and get no answer (the keep-alive race of any HTTP server), which these tests count."""
    old = set(nginx_workers(project))
    assert project.edge.exec_run(["nginx", "-s", "reload"]).exit_code == 0
    for _ in range(100):
        now = nginx_workers(project)
        if now and not old & set(now) and not any("shutting down" in t for t in now.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the reload did not finish in 10 s: {now}")


def test_access_log_lines_stay_whole_and_a_graceful_stop_loses_none(project):
    """Every worker's lines reach `docker logs` whole, through the edge's relay and across an
    nginx reload; a graceful stop (`docker stop`, right after the last request, while the
    lines still sit in nginx's buffers) writes out the last of them."""
    project.release_all("v1")
    answered, failures = hammer(project.live_url, clients=8, requests=250, path="/api/status/200")
    assert failures == [] and answered == 2000
    reload_nginx(project)
    answered, failures = hammer(project.live_url, clients=2, requests=100, path="/api/status/200")
    assert failures == [] and answered == 200
    project.edge.stop(timeout=30)
    project.edge.reload()
    assert project.edge.attrs["State"]["ExitCode"] == 0, project.edge.logs(tail=20)
    lines = [x for x in project.edge.logs(stdout=True, stderr=False).decode().splitlines() if x.strip()]
    parsed = [json.loads(x) for x in lines]  # a broken or mixed line fails here
    assert sum(1 for x in parsed if x.get("path") == "/api/status/200") == 2200


def test_a_site_change_serves_when_up_returns_and_one_nginx_cannot_apply_is_put_back(project):
    """`nginx -s reload` only sends a signal. `up` waits until workers of the new config serve,
    so its change answers at once; a config that passes `nginx -t` but that the master cannot
    apply (here: a port a process in the edge already holds) is reported and put back."""
    from deployer.adapters.edge import Edge
    from deployer.adapters.engine import Engine
    from deployer.errors import EdgeError

    project.release_all("v1")
    project.write_config(edge='[edge.headers]\nX-Team = "shop"\n')
    assert "site config applied and reloaded" in project.ok("up").stderr
    assert project.get("/api/version").headers.get("x-team") == "shop"

    holder = "use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 9999, Listen => 1) or die; sleep 60"
    project.edge.exec_run(["perl", "-e", holder], detach=True)
    site = project.edge_file("/var/lib/deployer/site.conf")
    engine = Engine()
    try:
        time.sleep(0.5)  # the holder binds
        with pytest.raises(EdgeError) as failed:
            Edge(engine, project.name).apply_site(site + "\nserver { listen 9999; return 204; }\n", step="up")
        assert "put back" in str(failed.value) and "kept its workers" in failed.value.logs
    finally:
        engine.close()
    assert project.edge_file("/var/lib/deployer/site.conf") == site
    answer = project.get("/api/version")
    assert answer.status_code == 200 and answer.headers.get("x-team") == "shop"


def test_without_trusted_proxies_a_client_cannot_forge_forwarded_headers(shared):
    """The default (edge.trusted_proxies empty): the app sees the edge's own view of the
    client, whatever X-Forwarded-* or Forwarded headers the client sent."""
    project = shared
    forged = {
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "443", "X-Forwarded-Prefix": "/evil", "Forwarded": "for=6.6.6.6;proto=https",
    }  # fmt: skip
    seen = project.get("/api/version", headers=forged).json()["forwarded"]
    assert "6.6.6.6" not in seen["x-forwarded-for"] and seen["x-forwarded-for"] == seen["x-real-ip"]
    assert seen["x-forwarded-proto"] == "http" and seen["x-forwarded-host"] != "evil.example"
    assert "x-forwarded-port" not in seen and "forwarded" not in seen and "x-forwarded-prefix" not in seen


def test_metrics_count_what_was_sent_and_only_on_the_preview_port(project):
    project.release_all("v1")
    for _ in range(40):
        project.get("/api/version")
    for _ in range(10):
        project.get("/api/status/503")
    for _ in range(5):
        project.get("/api/status/404")
    release_id = next(c for c in project.containers("blue")).labels["deployer.release"]
    import httpx

    text = httpx.get(project.preview_url + "/_deployer/metrics", timeout=5).text
    labels = f'route="live",colour="blue",release="{release_id}"'
    assert f'deployer_requests_total{{{labels},class="2xx"}} 40' in text
    assert f'deployer_requests_total{{{labels},class="5xx"}} 10' in text
    assert f'deployer_requests_total{{{labels},class="4xx"}} 5' in text
    assert f"deployer_request_duration_seconds_count{{{labels}}} 55" in text
    assert f'deployer_request_duration_seconds_bucket{{{labels},le="+Inf"}} 55' in text
    public = project.get("/_deployer/metrics")
    assert public.status_code == 404 and "deployer_requests_total" not in public.text
    # A window is clamped to 5..120 s; one that is not a number (nan reads as one) is the
    # cumulative view, never a window no slot falls in.
    for window, seconds in (("60", 60), ("inf", 120), ("-inf", 5)):
        answer = httpx.get(f"{project.preview_url}/_deployer/metrics?window={window}", timeout=5)
        assert answer.text.startswith(f"# window {seconds} seconds"), (window, answer.text[:200])
        if seconds > 5:  # the requests above are within the last minute, maybe not the last 5 s
            assert f'deployer_window_requests_total{{{labels},class="2xx"}} 40' in answer.text, (window, answer.text)
    for window in ("nan", "-nan", "NaN", "a+minute"):
        answer = httpx.get(f"{project.preview_url}/_deployer/metrics?window={window}", timeout=5)
        assert answer.status_code == 200 and not answer.text.startswith("# window"), (window, answer.text[:200])
        assert f'deployer_requests_total{{{labels},class="2xx"}} 40' in answer.text, (window, answer.text[-800:])

    status = json.loads(project.ok("status", "--json").stdout)
    traffic = status["colours"]["blue"]["traffic"]
    assert traffic["requests"] == 55 and traffic["errors_5xx"] == 10
    assert traffic["error_rate"] == pytest.approx(10 / 55, abs=1e-3)
    assert traffic["p99_ms"] is not None and traffic["rate"] > 0

    # A request that an old worker finishes after an nginx reload (it drains) counts too:
    # the worker's flush timer has fired for the last time when the reload began.
    import threading

    slow = threading.Thread(target=project.get, args=("/api/slow",))  # 2 s in the test app
    slow.start()
    time.sleep(0.5)
    assert project.edge.exec_run(["nginx", "-s", "reload"]).exit_code == 0
    slow.join(timeout=30)
    time.sleep(1.5)  # the new workers' flush
    text = httpx.get(project.preview_url + "/_deployer/metrics", timeout=5).text
    assert f'deployer_requests_total{{{labels},class="2xx"}} 41' in text, text[-1500:]


def dns_waits(project) -> int:
    import httpx

    text = httpx.get(project.preview_url + "/_deployer/metrics", timeout=5).text
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("deployer_dns_waits_total ")))


def test_no_request_waits_on_dns_after_a_quiet_spell_or_a_switch(project):
    """Every worker keeps the names of both colours' releases resolved, so the first
    requests after a quiet spell (past the cache's fresh and stale spans) and after a switch
    (to names no live request has used) never ask Docker's DNS themselves: the edge counts
    every request that does."""
    project.release_all("v1", "v2")  # v2 live on green, v1 the standby on blue
    time.sleep(7)  # quiet: past the cache's 1 s fresh and 5 s stale spans
    before = dns_waits(project)
    answered, failures = hammer(project.live_url, clients=8, requests=10)  # 8 connections: every worker
    assert failures == [] and answered == 80
    project.ok("switch", "--to", "blue")
    answered, failures = hammer(project.live_url, clients=8, requests=10)
    assert failures == [] and answered == 80
    assert project.serving("/api/version") == ("v1", "blue")
    assert dns_waits(project) == before


def test_idle_and_slow_clients_do_not_starve_real_ones(shared):
    project = shared
    parts = urlsplit(project.live_url)
    idle = []
    try:
        for i in range(300):
            s = socket.create_connection((parts.hostname, parts.port), timeout=5)
            if i % 2:
                s.sendall(b"GET /api/version HTTP/1.1\r\nHost: x\r\n")  # a slow client: never finishes its headers
            idle.append(s)
        answered, failures = hammer(project.live_url, clients=4, requests=100)
        assert failures == [] and answered == 400
    finally:
        for s in idle:
            s.close()


def slow_requests(url: str, n: int, path: str) -> list[tuple[int, float, str | None]]:
    """n requests at once, each on its own connection: (status, seconds, Retry-After)."""
    parts = urlsplit(url)
    results: list[tuple[int, float, str | None]] = []
    start = threading.Barrier(n)

    def one() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            start.wait(timeout=30)
            t0 = time.monotonic()
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            results.append((r.status, time.monotonic() - t0, r.getheader("Retry-After")))
        finally:
            conn.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_a_service_gets_no_more_requests_at_once_than_its_cap(project):
    """services.*.max_in_flight: a request over the cap waits up to 2 s for a slot, then
    gets 503 + Retry-After; the capped requests are served; other services are not capped;
    and every slot comes back, including those of requests whose client went away."""
    project.write_config(backend="max_in_flight = 3")
    project.tag("v1", backend_env={"SLOW_SECONDS": "4"})  # /api/slow holds a slot for 4 s
    project.ok("up")
    project.ok("release", "v1", "--no-backup")

    results = slow_requests(project.live_url, 8, "/api/slow")
    served = [r for r in results if r[0] == 200]
    shed = [r for r in results if r[0] == 503]
    assert len(served) == 3 and len(shed) == 5, results
    assert all(1.8 < seconds < 3.5 for _, seconds, _ in shed), shed  # after the wait, not after the app
    assert all(retry == "1" for _, _, retry in shed), shed
    # the front end has no cap
    assert [r[0] for r in slow_requests(project.live_url, 6, "/slow")] == [200] * 6

    parts = urlsplit(project.live_url)

    def hold() -> list[socket.socket]:
        held = []
        for _ in range(3):
            s = socket.create_connection((parts.hostname, parts.port), timeout=5)
            s.sendall(b"GET /api/slow HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(s)
        return held

    # Clients that go away mid-request give their slots back at once (nginx logs a 499).
    held = hold()
    time.sleep(0.5)
    assert project.get("/api/version").status_code == 503  # the three hold every slot
    for s in held:
        s.close()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert project.get("/api/version").status_code == 200
    assert time.monotonic() - t0 < 0.8  # no wait: the slots came back before the app finished

    # A request that finds every slot taken gets the first one that frees within its wait.
    held = hold()
    try:
        time.sleep(3.5)  # the three are answered 4 s after they came
        t0 = time.monotonic()
        assert project.get("/api/version").status_code == 200
        assert time.monotonic() - t0 > 0.2  # it did wait
    finally:
        for s in held:
            s.close()

    # the 503s are the edge's own answers in the metrics (users saw them; the watch does not
    # judge the release on them), apart from the release's 5xx
    release_id = next(c for c in project.containers("blue")).labels["deployer.release"]
    import httpx

    text = httpx.get(project.preview_url + "/_deployer/metrics", timeout=5).text
    labels = f'route="live",colour="blue",release="{release_id}"'
    assert f'deployer_requests_total{{{labels},class="edge_503"}} 6' in text, text
    assert f'deployer_requests_total{{{labels},class="5xx"}}' not in text
