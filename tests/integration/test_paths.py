"""The edge routes and limits on the path the app acts on. Crafted request targets go through
the real edge to the test app, which echoes the target it received ("raw"). Each is either
refused by the edge with 400, or reaches an app, or is limited or unrouted by the edge,
exactly as the path a servlet container (or Spring, or Node) reads from it decides: no form
escapes the limit of /api/ai/, and none reaches an app under /admin/, which no service routes.

One stack for the whole table: the backend owns /api/, the front end /app/ (where path
parameters may end a path, as ";jsessionid=" does), and /api/ai/ allows 1 request a minute
per client after a burst of 2, so once the burst is spent every request the edge counts
under it gets 429 for the rest of the test."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import unquote

import pytest
from edge_clients import access_lines, request

pytestmark = pytest.mark.docker

ROUTES = """
[routes."/api/ai/"]
rate_limit = "1r/m"
burst = 2

[routes."/app/"]
path_params = true
"""

ROUTED = {"/api/": "backend", "/app/": "frontend"}
LIMITED = "/api/ai/"

# (request target, what the edge does): "refused" (400), "limited" (429 once the burst is
# spent), "unrouted" (the edge's 404), or the service that answers.
TABLE = [
    # path parameters: Tomcat, Jetty and Spring drop them, nginx does not
    ("/api;x=y/ai/chat", "refused"),
    ("/api/ai;/chat", "refused"),
    ("/api/ai;x=1/chat", "refused"),
    ("/api/ai/chat;jsessionid=A1", "refused"),  # /api/ai/ does not take them
    ("/app;jsessionid=A1/page", "refused"),  # only at the end of the path
    ("/app/..;/admin/", "refused"),
    ("/app/..;x=1", "refused"),
    ("/admin;x=1/", "refused"),
    # encoded separators, dots and escapes
    ("/api%2fai/chat", "refused"),
    ("/api%2Fai/chat", "refused"),
    ("/api/%2e%2e/admin/", "refused"),
    ("/app/%2e%2e/admin/", "refused"),
    ("/api/ai/%2E/chat", "refused"),
    ("/api/ai/%5cchat", "refused"),
    ("/app/%5C..%5C..%5Cadmin/", "refused"),
    ("/api/ai%252fchat", "refused"),
    ("/api/ai/%3bx=1", "refused"),
    ("/api/ai/%c0%ae%c0%ae/", "refused"),
    # dot segments and empty segments
    ("/x/../api/ai/chat", "refused"),
    ("/api/./ai/chat", "refused"),
    ("/app/../api/ai/chat", "refused"),
    ("/api/ai/..", "refused"),
    ("//api//ai/chat", "refused"),
    ("/api//ai/chat", "refused"),
    # control characters, white space at a segment's edge, backslashes, fragments
    ("/api/ai%00", "refused"),
    ("/api/ai/%0d%0aX-Injected:%20yes", "refused"),
    ("/api/ai/%09", "refused"),
    ("/api/ai%20/chat", "refused"),
    ("/api/%20ai/chat", "refused"),
    ("/api/ai/chat%20", "refused"),
    ("/api\\ai\\chat", "refused"),
    ("/app/x\\..\\..\\admin/", "refused"),
    ("/app/x#/../../admin/", "refused"),
    ("/api/ai%", "refused"),
    # what passes: decided on the path the app acts on
    ("/api/ai/chat", "limited"),
    ("/api/ai/", "limited"),
    ("/api/%61i/chat", "limited"),
    ("/%61pi/ai/chat", "limited"),
    ("/api/ai/chat?x=..;/%2f//%00%0d%0a#f", "limited"),  # the query string is the app's
    ("/api/ai", "backend"),
    ("/api/AI/chat", "backend"),  # case matters to nginx and to servlet containers alike
    ("/api/aix/chat", "backend"),
    ("/api/ai.json", "backend"),
    ("/api/items/b%20c?q=%0d%0a", "backend"),
    ("/api/%E2%9C%93/x", "backend"),
    ("/app/page;jsessionid=A1", "frontend"),
    ("/app/;jsessionid=A1?next=/x", "frontend"),
    ("/app/page;a=1;b=2", "frontend"),
    ("/ap%70/page", "frontend"),
    ("/API/ai/chat", "unrouted"),
    ("/admin/", "unrouted"),
    ("/admin/%61", "unrouted"),
    ("/", "unrouted"),
]


def readings(target: str) -> set[str]:
    """The paths an app server may act on for a request target: path parameters dropped from
    each segment before decoding (Tomcat, Jetty, Spring's UrlPathHelper) or kept (Node),
    decoded once or twice (a lax app), backslashes read as slashes, empty segments merged and
    dot segments resolved, each segment trimmed of white space or not (Spring's older
    AntPathMatcher trimmed)."""
    path = target.split("?", 1)[0]
    found = set()
    for params in (True, False):
        kept = "/".join(s.split(";", 1)[0] for s in path.split("/")) if params else path
        for times in (1, 2):
            decoded = kept
            for _ in range(times):
                decoded = unquote(decoded, encoding="latin-1")
            for trim in (False, True):
                found.add(normalise(decoded.replace("\\", "/"), trim))
    return found


def normalise(path: str, trim: bool) -> str:
    parts = path.split("/")[1:]
    out: list[str] = []
    for i, segment in enumerate(parts):
        segment = segment.strip(" \t\r\n\0") if trim else segment
        last = i == len(parts) - 1
        if segment == "..":
            out = out[:-1]
        if segment in ("", ".", ".."):
            if last:
                out.append("")
            continue
        out.append(segment)
    return "/" + "/".join(out)


def decision(path: str) -> str:
    """What a request for this path must get: its limit, else its service, else nothing."""
    if path.startswith(LIMITED):
        return "limited"
    owners = [(p, s) for p, s in ROUTED.items() if path.startswith(p)]
    return max(owners)[1] if owners else "unrouted"


def outcome(port: int, target: str) -> tuple[str, dict | None]:
    """What the edge did with a request: refused, limited, unrouted, or the app's answer."""
    r, body = request(port, target)
    if r.status == 400 and b"400 Bad Request" in body:
        return "refused", None
    if r.status == 429 and r.getheader("Retry-After"):
        return "limited", None
    if r.status == 404 and body == b"not found\n":
        return "unrouted", None
    assert r.status == 200, (target, r.status, body[:200])
    answer = json.loads(body)
    return answer["service"], answer


def test_the_table_covers_what_it_must():
    assert len(TABLE) >= 30 and len({t for t, _ in TABLE}) == len(TABLE)
    # Refused forms that an app server reads as under the limit, or as unrouted.
    refused = {decision(r) for t, expected in TABLE if expected == "refused" for r in readings(t)}
    assert {"limited", "unrouted", "backend", "frontend"} <= refused
    # every target the edge lets through means one decision, whatever reads it
    for target, expected in TABLE:
        if expected != "refused":
            assert {decision(r) for r in readings(target)} == {expected}, target


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("paths"), docker_client, test_app_image)
    try:
        s.write_config(extra=ROUTES, expose_colour=False)
        # The front end owns /app/ only (the smoke path follows it); nothing routes /admin/.
        text = s.config.read_text()
        moved = text.replace('routes = ["/"]', 'routes = ["/app/"]').replace(
            '"/api/version", "/"]', '"/api/version", "/app/"]'
        )
        assert 'routes = ["/app/"]' in moved and '"/api/version", "/app/"]' in moved
        s.config.write_text(moved)
        s.release_all("v1")
        yield s
    finally:
        s.destroy()


def test_every_form_is_refused_or_decided_on_the_path_the_app_reads(stack):
    port = stack.port(80)
    refused = [t for t, expected in TABLE if expected == "refused"]
    # Refused before the limits count them: the burst of /api/ai/ is still whole after them.
    assert {t: outcome(port, t)[0] for t in refused} == dict.fromkeys(refused, "refused")
    spent = time.monotonic()
    assert [outcome(port, "/api/ai/chat")[0] for _ in range(4)] == ["backend"] * 3 + ["limited"]
    seen = {}
    for target, expected in TABLE:
        if expected == "refused":
            continue
        got, answer = outcome(port, target)
        seen[target] = got
        if answer is not None:
            assert answer["raw"] == target  # passed on as the client sent it
            assert {decision(r) for r in readings(answer["raw"])} == {got}, target
    assert time.monotonic() - spent < 50, "the limit's one request a minute may have come back"
    assert seen == {t: expected for t, expected in TABLE if expected != "refused"}


def test_the_deployers_own_probes_are_not_refused(stack):
    """From inside the edge (the deployer's checks), a path parameter passes on unchanged."""
    code, out = stack.edge.exec_run(["curl", "-sS", "--path-as-is", "http://127.0.0.1:80/api/items;v=1"])
    assert code == 0 and json.loads(out)["raw"] == "/api/items;v=1", out


def test_strip_prefix_hands_the_app_its_own_path_and_the_limits_still_see_the_clients(project):
    """services.backend.strip_prefix: the backend serves / and sits under /api/. The limit
    of /api/ai/ counts on the path the client sent; a prefix sent percent-encoded is
    refused (the limit chose on the decoded path, the app would see another)."""
    project.write_config(backend="strip_prefix = true", extra='[routes."/api/ai/"]\nrate_limit = "1r/m"\nburst = 1\n')
    project.release_all("v1")  # its smoke path /api/version reaches the backend as /version
    port = project.port(80)
    for target, raw in (("/api/users?id=1", "/users?id=1"), ("/api/", "/"), ("/api/a%20b", "/a%20b")):
        r, body = request(port, target, headers={"X-Forwarded-Prefix": "/evil"})
        answer = json.loads(body)
        assert r.status == 200 and answer["service"] == "backend" and answer["raw"] == raw, (target, body)
        assert answer["forwarded"]["x-forwarded-prefix"] == "/api"
    r, body = request(port, "/index.html", headers={"X-Forwarded-Prefix": "/evil"})
    front = json.loads(body)
    assert front["service"] == "frontend" and front["raw"] == "/index.html"
    assert "x-forwarded-prefix" not in front["forwarded"]  # a client's own is never passed on
    r, _ = request(port, "/%61pi/users")
    assert r.status == 400
    assert [outcome(port, "/api/ai/chat")[0] for _ in range(3)] == ["backend", "backend", "limited"]
    line = next(x for x in reversed(access_lines(project)) if x["path"] == "/api/users")
    assert line["prefix"] == "/api/" and line["service"] == "backend"
