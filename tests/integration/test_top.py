"""`deployer top`: a reading of each colour's traffic, and a running view that shows a switch
as it happens. Real edge, real traffic, the CLI as a user runs it."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.docker


def _traffic(url: str, stop: threading.Event, sent: list[int]) -> None:
    with httpx.Client(timeout=5) as client:
        for _ in range(20_000):  # bounded; the test stops it long before
            if stop.is_set():
                return
            client.get(url + "/api/version")
            sent[0] += 1
            time.sleep(0.01)


def test_top_reads_each_colour_and_shows_a_switch_as_it_happens(project):
    project.release_all("v1", "v2")  # v2 live on green, v1 the warm standby on blue
    stop, sent = threading.Event(), [0]
    load = threading.Thread(target=_traffic, args=(project.live_url, stop, sent), daemon=True)
    load.start()
    watcher = project.popen("top", "--json", "--interval", "0.5")
    readings: list[dict] = []
    try:
        time.sleep(3)
        once = json.loads(project.ok("top", "--once", "--json").stdout)
        assert once["live"] == "green" and once["live_version"] == "v2", once
        green, blue = once["colours"]["green"], once["colours"]["blue"]
        assert (green["role"], green["version"], blue["role"], blue["version"]) == ("live", "v2", "standby", "v1")
        assert green["live"]["rate"] > 5 and green["live"]["error_rate"] == 0, green
        assert green["live"]["p50_ms"] is not None and green["live"]["p50_ms"] <= green["live"]["p99_ms"]
        assert blue["live"]["requests"] == 0
        backend = once["services"]["backend"]  # the public traffic per service, between two readings
        assert backend["rate"] > 5 and backend["error_rate"] == 0 and backend["upstream_errors"] == 0, backend
        assert backend["p99_ms"] is not None and backend["in_flight"] >= 0
        assert once["services"].get("frontend", {"rate": 0})["rate"] == 0

        project.ok("switch", "--to", "blue")
        deadline = time.monotonic() + 30
        assert watcher.stdout is not None
        while time.monotonic() < deadline:
            line = watcher.stdout.readline()
            if not line:
                break
            readings.append(json.loads(line))
            if readings[-1]["live"] == "blue" and readings[-1]["colours"]["blue"]["live"]["rate"] > 0:
                break
    finally:
        stop.set()
        load.join(timeout=10)
        watcher.terminate()
        watcher.wait(timeout=10)
    lives = [r["live"] for r in readings]
    assert "green" in lives and lives[-1] == "blue", lives  # the running view saw the switch
    assert readings[-1]["colours"]["blue"]["live"]["rate"] > 0
    assert sent[0] > 50

    plain = project.ok("top", "--once").stdout  # on a pipe: a title and tab-separated rows
    assert "live: blue v1" in plain and "blue\tlive\tv1\tlive\t" in plain
    assert "service\treq/s" in plain and "\nbackend\t" in plain
    bad = project.cli("top", "--interval", "0.1")
    assert bad.returncode == 2 and "--interval" in bad.stderr and "Traceback" not in bad.stderr
