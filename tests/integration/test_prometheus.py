"""A real Prometheus (Debian's package, tests/prometheus) scrapes the edge's per-service
families and answers PromQL with the figures of the traffic this test sent itself.

Prometheus runs in the network namespace of the edge (that of its ports holder), so it scrapes
the preview port at 127.0.0.1, as a Prometheus on the Docker host scrapes the port published
on the host's 127.0.0.1 (docs/observability.md); any other address gets its connection closed
(docs/security.md). It listens on 127.0.0.1 of that namespace only, and the test asks its HTTP
API through `docker exec` and curl: no host port at all.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from deployer.core import edgelayout

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "deployer.json"

pytestmark = pytest.mark.docker

PROXY_TIMEOUT = 3  # edge.proxy_timeout: the backend's slow path (6 s) times out, nginx answers 504
FRONTEND_SLOW = 2.5  # the frontend's /slow: in flight that long, then 200
PROMETHEUS = "http://127.0.0.1:9090"
CONFIG = f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: edge
    metrics_path: /_deployer/metrics
    static_configs:
      - targets: ["127.0.0.1:{edgelayout.PREVIEW_PORT}"]
"""
START = (
    'printf "%s" "$PROMETHEUS_CONFIG" > /tmp/prometheus.yml && exec prometheus --config.file=/tmp/prometheus.yml'
    " --storage.tsdb.path=/tmp/data --web.listen-address=127.0.0.1:9090"
)
# A prefix no config accepts (core's ROUTE_PREFIX), as a route state written by hand may hold:
# its double quote must come out escaped, or Prometheus cannot read the scrape at all.
ODD_PREFIX = '/odd"q/'


def query(prometheus, promql: str) -> list[dict]:
    """The result vector of an instant query, asked from inside the Prometheus container."""
    for _ in range(5):  # bounded: an exec the engine reports without its exit code
        code, out = prometheus.exec_run(
            [
                "curl",
                "-sf",
                "--max-time",
                "10",
                "--get",
                "--data-urlencode",
                f"query={promql}",
                f"{PROMETHEUS}/api/v1/query",
            ]
        )
        if code == 0:
            break
        time.sleep(0.5)
    assert code == 0, f"{promql}: {out.decode(errors='replace')}"
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def by(prometheus, promql: str, *labels: str) -> dict:
    """{tuple of the labels' values (or the one value): number} of an instant query."""
    out = {}
    for sample in query(prometheus, promql):
        key = tuple(sample["metric"].get(label, "") for label in labels)
        out[key[0] if len(key) == 1 else key] = float(sample["value"][1])
    return out


def wait_for(what: str, check, limit: float = 60):
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} within {limit} s"
        time.sleep(0.5)


def test_prometheus_reads_each_services_figures_as_sent(project, docker_client, prometheus_image):
    project.write_config(edge=f"proxy_timeout = {PROXY_TIMEOUT}\n")
    project.tag("v1", backend_env={"SLOW_SECONDS": "6"}, frontend_env={"SLOW_SECONDS": str(FRONTEND_SLOW)})
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    # A route to the frontend under a prefix with a double quote, as a hand-written route state
    # may hold one (the router takes any prefix without a space).
    state = f"{edgelayout.STATE}/blue"
    code, out = project.edge.exec_run(
        ["sh", "-c", f"printf 'route {ODD_PREFIX} frontend\\n' >> {state}"
         f" && curl -sf --unix-socket {edgelayout.CONTROL} http://edge/reload"]
    )  # fmt: skip
    assert code == 0, out

    prometheus = docker_client.containers.run(
        prometheus_image,
        ["sh", "-c", START],
        name=f"{project.name}-prometheus",  # Stack.destroy() removes it too
        environment={"PROMETHEUS_CONFIG": CONFIG},
        network_mode=f"container:{project.ports_holder.id}",
        detach=True,
    )
    try:
        wait_for("ready Prometheus", lambda: prometheus.exec_run(["curl", "-sf", f"{PROMETHEUS}/-/ready"])[0] == 0)
        # its first scrape: targets reach the scrape loops some seconds after it is ready
        wait_for("a first scrape", lambda: by(prometheus, 'up{job="edge"}') == {(): 1.0})

        # Traffic: fast answers of both services, the backend's own 4xx and 5xx, a route whose
        # prefix needs escaping, and in parallel slow requests held in flight: the frontend's
        # answered after 2.5 s, the backend's cut by the edge's timeout (upstream errors).
        with httpx.Client(base_url=project.live_url, timeout=10) as client:
            for path, times, status in (
                ("/api/version", 30, 200),
                ("/api/status/503", 7, 503),
                ("/api/status/404", 5, 404),
                ("/", 12, 200),
                ("/odd%22q/page", 2, 200),
            ):
                for _ in range(times):
                    assert client.get(path).status_code == status, path
        with ThreadPoolExecutor(7) as pool:
            slow = [pool.submit(httpx.get, project.live_url + "/slow", timeout=10) for _ in range(4)]
            cut = [pool.submit(httpx.get, project.live_url + "/api/slow", timeout=10) for _ in range(3)]
            assert [f.result().status_code for f in slow] == [200] * 4
            assert [f.result().status_code for f in cut] == [504] * 3
        sent = time.time()
        # a scrape that began after the last request: the edge answers it with every request
        # finished before (metrics.lua)
        last_scrape = 'timestamp(up{job="edge"})'
        wait_for("a scrape after the traffic", lambda: (by(prometheus, last_scrape).get(()) or 0) > sent + 1)
        assert by(prometheus, 'up{job="edge"}') == {(): 1.0}, "Prometheus could not read the edge's metrics"

        requests = by(
            prometheus,
            "sum by (service, prefix, class) (deployer_service_requests_total)",
            "service",
            "prefix",
            "class",
        )
        assert requests == {
            ("backend", "/api/", "2xx"): 30,
            ("backend", "/api/", "5xx"): 7 + 3,
            ("backend", "/api/", "4xx"): 5,
            ("frontend", "/", "2xx"): 12 + 4,
            ("frontend", ODD_PREFIX, "2xx"): 2,
        }
        assert by(prometheus, "sum by (colour) (deployer_service_requests_total)", "colour") == {"blue": 63}
        errors = by(
            prometheus, "sum by (service, prefix) (deployer_service_upstream_errors_total)", "service", "prefix"
        )
        assert errors == {("backend", "/api/"): 3, ("frontend", "/"): 0, ("frontend", ODD_PREFIX): 0}

        counts = by(prometheus, "sum by (service) (deployer_service_request_duration_seconds_count)", "service")
        assert counts == {"backend": 45, "frontend": 18}
        fast = by(prometheus, 'sum by (service) (deployer_service_request_duration_seconds_bucket{le="1"})', "service")
        assert fast == {"backend": 42, "frontend": 14}  # all but the slow and the cut ones
        quantiles = {
            q: by(prometheus, f'histogram_quantile({q}, sum by (le) (deployer_service_request_duration_seconds_bucket{{service="frontend"}}))')[()]
            for q in (0.5, 0.99)
        }  # fmt: skip
        assert quantiles[0.5] <= 1 and 2 < quantiles[0.99] <= 3, quantiles  # the slow four: 2.5 s, in (2, 3]

        held = by(prometheus, "max by (service) (max_over_time(deployer_service_in_flight[5m]))", "service")
        assert held == {"backend": 3, "frontend": 4}
        assert by(prometheus, "sum(deployer_service_in_flight)") == {(): 0}

        # Every query of the Grafana dashboard (docs/grafana/deployer.json), with its variables
        # as Grafana fills them (every service; a rate interval), answers with figures.
        for panel in json.loads(DASHBOARD.read_text())["panels"]:
            for target in panel["targets"]:
                promql = target["expr"].replace("$service", ".*").replace("$__rate_interval", "1m")
                assert query(prometheus, promql), f"{panel['title']}: no series for {promql}"
    finally:
        prometheus.remove(force=True)
