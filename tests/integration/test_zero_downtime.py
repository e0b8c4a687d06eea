"""Zero downtime under load: switches and a release drop no request and never go backwards.

Three kinds of client run at once through the edge's live port (bench/load.py):
persistent keep-alive connections that never retry, browser-like clients that retry an
idempotent request once, and a new connection per request; with long (~2 s) requests in
flight at every switch. The assertions are counts, never timings.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from load import KINDS, Event, Load, analyse

pytestmark = pytest.mark.docker


def deploy_two_colours(project, **env) -> None:
    """blue runs v1 (warm standby), green runs v2 (live)."""
    for version in ("v1", "v2"):
        project.tag(version, backend_env=env or None)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")
    assert project.serving() == ("v2", "green")


def timed(project, *args: str) -> tuple[float, float]:
    start = time.monotonic()
    project.ok(*args)
    return start, time.monotonic()


def test_switches_and_a_release_under_load_fail_no_request_and_never_go_back(project):
    deploy_two_colours(project)
    project.tag("v3")
    version = {"blue": "v1", "green": "v2"}
    live = "green"
    events: list[Event] = []

    traffic = Load(project.live_url, clients=4, slow=1, rate=10, duration=85, max_requests=2_000)
    traffic.start()
    try:
        time.sleep(1.0)
        for _ in range(5):
            live = "blue" if live == "green" else "green"
            start, end = timed(project, "switch", "--to", live)
            events.append(Event("deployer", "switch", start, end, live, version[live]))
            time.sleep(0.7)
        idle = "blue" if live == "green" else "green"
        start, end = timed(project, "release", "v3", "--no-backup")
        live, version[idle] = idle, "v3"
        events.append(Event("deployer", "release", start, end, live, "v3"))
        time.sleep(1.0)
    finally:
        records = traffic.stop()

    result = analyse(records, events)
    for kind in KINDS:
        counts = result[kind]
        assert counts["requests"] > 20, f"{kind}: too little traffic to judge: {counts}"
        assert counts["failures"] == 0, f"{kind}: failed requests: {counts['errors']}"
        assert counts["backwards"] == 0, f"{kind}: answered by the old version after a switch had returned"
        assert counts["mixed"] == 0, f"{kind}: the edge and the app disagreed on the colour"
    # The scenario was real: long requests spanned switches, and every colour answered.
    spanning = [r for r in records if r.lane == "slow" and any(r.start < e.start and r.end > e.end for e in events)]
    assert spanning, "no long request was in flight across a switch"
    assert {(r.colour, r.version) for r in records} >= {("green", "v2"), ("blue", "v1"), ("green", "v3")}
    assert project.serving() == ("v3", "green")


def read_events(response: http.client.HTTPResponse, count: int) -> list[dict]:
    events: list[dict] = []
    while len(events) < count:
        line = response.fp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    return events


def test_open_streams_and_long_requests_finish_on_their_colour_after_a_switch(project):
    """Defined behaviour: an open stream and an in-flight request stay on the colour they started on."""
    deploy_two_colours(project, EVENT_INTERVAL="0.25", EVENT_COUNT="16", SLOW_SECONDS="3")
    url = urlsplit(project.live_url)

    stream = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    stream.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
    response = stream.getresponse()
    assert response.status == 200
    first = read_events(response, 2)

    long_answers: list[tuple[int, str, str, float]] = []

    def long_request(method: str) -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
        try:
            conn.request(method, "/api/slow", body=b"{}" if method == "POST" else None)
            r = conn.getresponse()
            r.read()
            long_answers.append((r.status, r.getheader("X-App-Colour"), r.getheader("X-App-Version"), time.monotonic()))
        except OSError as exc:
            long_answers.append((0, type(exc).__name__, "", time.monotonic()))
        finally:
            conn.close()

    workers = [threading.Thread(target=long_request, args=(m,)) for m in ("GET", "POST", "GET", "POST")]
    for w in workers:
        w.start()
    time.sleep(0.5)  # the edge has routed them to green by now
    _, switched = timed(project, "switch", "--to", "blue")
    assert project.serving() == ("v1", "blue")

    rest = read_events(response, 16 - len(first))
    stream.close()
    for w in workers:
        w.join(20)

    events = first + rest
    assert [e["n"] for e in events] == list(range(16)), "the stream lost events across the switch"
    assert {(e["colour"], e["version"]) for e in events} == {("green", "v2")}
    assert [a[:3] for a in long_answers] == [(200, "green", "v2")] * 4, long_answers
    assert all(done > switched for *_, done in long_answers), "the long requests ended before the switch returned"


def read_ws_frames(sock, count: int) -> list[dict]:
    """Read unmasked server frames until `count` text frames or a close frame arrive."""
    frames, buffer = [], b""
    while len(frames) < count:
        while len(buffer) < 2 or len(buffer) < 2 + buffer[1]:
            chunk = sock.recv(4096)
            if not chunk:
                return frames
            buffer += chunk
        opcode, length = buffer[0] & 0x0F, buffer[1]
        payload, buffer = buffer[2 : 2 + length], buffer[2 + length :]
        if opcode == 0x8:
            frames.append({"close": int.from_bytes(payload[:2], "big")})
            return frames
        frames.append(json.loads(payload))
    return frames


def test_an_open_websocket_is_kept_on_its_colour_across_a_switch(project):
    """Defined behaviour: a WebSocket opened before a switch keeps its colour and all its frames."""
    import base64
    import os
    import socket

    deploy_two_colours(project, EVENT_INTERVAL="0.25", EVENT_COUNT="12")
    url = urlsplit(project.live_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"x-deployer-colour: green" in head.lower()
    first = read_ws_frames(sock, 2)

    project.ok("switch", "--to", "blue")
    assert project.serving() == ("v1", "blue")  # new requests go to blue at once

    rest = read_ws_frames(sock, 11)
    sock.close()
    frames = first + rest
    assert [f["n"] for f in frames[:-1]] == list(range(12)), "the WebSocket lost frames across the switch"
    assert {(f["colour"], f["version"]) for f in frames[:-1]} == {("green", "v2")}
    assert frames[-1] == {"close": 1000}, "the socket was not closed cleanly by its app"
