"""The status page (docs/observability.md#the-status-page) in a real browser: Debian's headless
Chromium (tests/chromium) loads it from a real edge during real traffic, a release and a switch,
and the DOM its script leaves shows the charts drawn from the edge's figures, with a mark at
the release and at the switch, the colours with their versions, the release's dump and the
history.

Chromium runs in the edge's network namespace (that of its ports holder), as a browser on the
Docker host (or at the end of an ssh tunnel) reaches the admin port at 127.0.0.1: no host port.
With DEPLOYER_PAGE_SCREENSHOT=<path>, the screenshot is kept there (docs/status-page.png).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from deployer.core import edgelayout

pytestmark = pytest.mark.docker

ADMIN = f"http://127.0.0.1:{edgelayout.PREVIEW_PORT}/_deployer/page/"
BROWSER = (
    "chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars"
    " --disable-crash-reporter --user-data-dir=/tmp/profile --virtual-time-budget=8000"
)
SCRIPT = (
    f"{BROWSER} --dump-dom {ADMIN} > /tmp/dom.html 2>/tmp/dom.err"
    f" && {BROWSER} --window-size=960,1240 --screenshot=/tmp/page.png {ADMIN} 2>/tmp/shot.err"
    " ; cat /tmp/dom.html; cat /tmp/dom.err /tmp/shot.err >&2"
)
BASELINE = 148  # page.js: a chart's y of 0 (H - BOTTOM)


def _traffic(url: str, stop: threading.Event, sent: list[int]) -> None:
    """Both services, and now and then one of the backend's own 503s."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for i in range(20_000):  # bounded; the test stops it long before
            if stop.is_set():
                return
            client.get("/api/status/503" if i % 40 == 39 else "/api/version" if i % 3 else "/")
            sent[0] += 1
            time.sleep(0.02)


def _json(project, name: str) -> dict:
    code, out = project.edge.exec_run(["curl", "-sf", "--max-time", "5", ADMIN + name])
    assert code == 0, out
    return json.loads(out)


def _wait_for_a_row(project, since: float) -> None:
    """Until the backend has a row of the last hour later than `since` (edge time) with traffic."""
    deadline = time.monotonic() + 25
    while True:
        rows = _json(project, "series.json")["services"].get("backend", [])
        if any(r[0] > since and r[1] and r[1] > 0 for r in rows):
            return
        assert time.monotonic() < deadline, f"no point with traffic after {since}: {rows}"
        time.sleep(1)


def _through_deployer_page(project, sent: int) -> None:
    """`deployer page` brings the admin port to this machine's 127.0.0.1 through the engine:
    the page, its series and the metrics, with counts this test's own traffic moved; nothing
    else. Ctrl-C ends it cleanly, and a port in use is bad input."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    page = project.popen("page", "--port", str(port))
    try:
        line = page.stdout.readline()
        assert line.startswith(f"http://127.0.0.1:{port}/_deployer/page/ "), (line, page.poll())
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            html = client.get("/_deployer/page/")
            assert html.status_code == 200 and html.headers["content-type"].startswith("text/html"), html
            assert "<title>deployer: status</title>" in html.text and '<table id="colours">' in html.text
            rows = client.get("/_deployer/page/series.json").json()["services"]["backend"]
            assert any(r[1] and r[1] > 0 for r in rows), rows
            metrics = client.get("/_deployer/metrics").text
            backend_5xx = sum(
                int(n) for n in re.findall(r'^deployer_service_requests_total\{service="backend",[^}]*class="5xx"\} (\d+)$',
                                          metrics, re.M)
            )  # fmt: skip
            assert backend_5xx >= sent // 40 > 0, (backend_5xx, sent)  # every 40th request was a 503 of the backend
            assert "deployer_window_requests_total" in client.get("/_deployer/metrics?window=60").text
            for path in ("/_deployer/sync", "/api/version", "/_deployer/health/blue", "/_deployer/page/x'y"):
                assert client.get(path).status_code == 404, path
    finally:
        page.send_signal(signal.SIGINT)
        out, err = page.communicate(timeout=30)
    assert page.returncode == 0 and "Traceback" not in err, (page.returncode, out, err)
    print(f"deployer page: {time.monotonic() - t:.1f}s")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        refused = project.cli("page", "--port", str(port))
    lines = [x for x in refused.stderr.splitlines() if x.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], refused.stderr


def _chart(dom: str, chart: str) -> str:
    found = re.search(rf'<svg id="{chart}"[^>]*>(.*?)</svg>', dom, re.S)
    assert found, f"no {chart} in the page"
    return found.group(1)


def test_the_status_page_draws_the_last_hour_with_a_mark_at_a_release_and_a_switch(
    project, docker_client, chromium_image
):
    started = time.monotonic()
    project.tag("v1")
    project.tag("v2")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    stop, sent = threading.Event(), [0]
    load = threading.Thread(target=_traffic, args=(project.live_url, stop, sent), daemon=True)
    load.start()
    try:
        # a point of the sampler (one every 10 s) with traffic before the release, and one after
        # the switch, so that both marks fall among the drawn points
        _wait_for_a_row(project, since=0)
        project.ok("release", "v2")  # with its dump, which the page lists
        project.ok("switch", "--to", "blue")
        switched = _json(project, "status.json")["now"]
        _wait_for_a_row(project, since=switched)
    finally:
        stop.set()
        load.join(timeout=10)
    assert sent[0] > 100
    _through_deployer_page(project, sent[0])

    # The page's weight on a first load, as a browser asks for it (gzip): under 200 KB.
    weight = 0
    for name in ("", "page.js", "page.css", "series.json", "status.json"):
        code, out = project.edge.exec_run(
            ["curl", "-sf", "-H", "Accept-Encoding: gzip", "-D", "-", "-o", "/dev/null", "-w", "%{size_download}",
             ADMIN + name]
        )  # fmt: skip
        assert code == 0, (name, out)
        head, _, size = out.decode().rpartition("\n")
        weight += int(size)
        if name in ("", "series.json", "status.json"):
            assert "content-encoding: gzip" in head.lower(), (name, head)
    print(f"the page's first load: {weight} bytes")
    assert weight < 200_000

    for path in ("/_deployer/page/", "/_deployer/page/status.json"):  # never on the public route
        assert project.get(path).status_code == 404, path
    status = _json(project, "status.json")
    assert (status["live"], status["standby"]) == ("blue", "green")
    assert status["colours"]["blue"]["version"] == "v1" and status["colours"]["green"]["version"] == "v2"
    actions = [json.loads(line)["action"] for line in status["history"]]
    assert actions[-3:] == ["release", "release", "switch"], actions
    dump = json.loads(status["dumps"][-1])
    assert dump["label"] == "pre-release v2" and dump["state"] == "verified", dump
    assert "sha256" not in dump and "test-secret-pw" not in json.dumps(status)

    browser = docker_client.containers.run(
        chromium_image,
        ["sh", "-c", SCRIPT],
        name=f"{project.name}-chromium",  # Stack.destroy() removes it too
        network_mode=f"container:{project.ports_holder.id}",
        detach=True,
    )
    try:
        code = browser.wait(timeout=120)["StatusCode"]
        dom = browser.logs(stdout=True, stderr=False).decode(errors="replace")
        errors = browser.logs(stdout=False, stderr=True).decode(errors="replace")
        assert code == 0, f"chromium exited {code}:\n{errors[-3000:]}"
        archive, _ = browser.get_archive("/tmp/page.png")
        with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
            member = tar.extractfile("page.png")
            assert member is not None
            png = member.read()
    finally:
        browser.remove(force=True)

    assert re.search(r'<body[^>]*data-loaded="1"', dom), dom[:3000]
    for chart in ("chart-rate", "chart-errors", "chart-p99"):
        svg = _chart(dom, chart)
        paths = re.findall(r'<path class="series" data-service="([a-z-]+)" d="([^"]+)"', svg)
        drawn = dict(paths)
        assert "backend" in drawn and "frontend" in drawn, (chart, paths)
        points = [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+),([\d.]+)", drawn["backend"])]
        assert len(points) >= 2 and min(y for _, y in points) < BASELINE - 1, (chart, drawn["backend"])
        marks = re.findall(r'<g class="mark" data-kind="([a-z-]+)"><line x1="([\d.]+)"', svg)
        kinds = [kind for kind, _ in marks]
        assert kinds.count("release") == 2 and kinds.count("switch") == 1, (chart, kinds)
        release_x = [float(x) for kind, x in marks if kind == "release"][-1]  # v2's, in the history's order
        switch_x = next(float(x) for kind, x in marks if kind == "switch")
        assert points[0][0] < release_x <= switch_x < points[-1][0], (chart, marks, drawn["backend"])  # among them
        assert "switch to blue" in svg and "release v2" in svg
    colours = re.search(r'<table id="colours">(.*?)</table>', dom, re.S).group(1)
    assert re.search(r"<td>blue</td><td class=\"live\">live</td><td>v1</td>", colours), colours
    assert re.search(r"<td>green</td><td>standby</td><td>v2</td>", colours), colours
    dumps = re.search(r'<table id="dumps">(.*?)</table>', dom, re.S).group(1)
    assert "pre-release v2" in dumps and '<td class="ok">verified' in dumps, dumps
    history = re.search(r'<table id="history">(.*?)</table>', dom, re.S).group(1)
    assert history.count('<td class="ok">ok</td>') >= 3, history

    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    keep = os.environ.get("DEPLOYER_PAGE_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(png)
    assert time.monotonic() - started < 180
