"""The commands an operator reaches for daily, on the real engine: `logs`, `exec` and
`rollback` (with and without VERSION). Each one's bad input is one line, exit 2, and changes
nothing. One stack for the module: v2 live on green, v1 the warm standby on blue; the
reading tests run first, the rollback test last."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("ops"), docker_client, test_app_image)
    try:
        s.tag("v3")  # kept on the engine, never released: `rollback v3` releases it
        s.release_all("v1", "v2")
        yield s
    finally:
        s.destroy()


def one_line_exit_2(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in result.stderr


def test_logs_of_a_colour_a_service_and_the_edge(stack):
    assert stack.serving() == ("v2", "green")
    live = stack.ok("logs", "backend")
    assert "listening on :8080 version=v2 colour=green service=backend" in live.stdout, live.stdout
    assert "colour=blue" not in live.stdout and " | " not in live.stdout  # one source: no prefix
    standby = stack.ok("logs", "--colour", "standby", "backend")
    assert "version=v1 colour=blue service=backend" in standby.stdout, standby.stdout
    every = stack.ok("logs", "--colour", "blue")
    assert "backend | " in every.stdout and "frontend | " in every.stdout
    assert "service=frontend" in every.stdout
    edge = stack.ok("logs", "edge", "--tail", "3")
    assert 0 < len(edge.stdout.splitlines()) <= 3
    assert stack.ok("logs", "backend", "--since", "1h").stdout.strip()

    for args, words in [
        (("logs", "nosuch"), ("nosuch", "backend, frontend, edge, db, backup")),
        (("logs", "--colour", "purple"), ("--colour", "purple")),
        (("logs", "--since", "soon"), ("--since", "soon")),
        (("logs", "--tail", "-1"), ("--tail",)),
    ]:
        one_line_exit_2(stack.cli(*args), *words)


def test_quiet_prints_no_progress_and_verbose_every_engine_call(stack):
    """The global -q and -v: the same switch, said in full, in nothing but its result, or with
    each engine call (the options go before the command)."""
    said = stack.raw_cli("switch", "--to", "green", "--config", str(stack.config))
    assert said.returncode == 0 and "· " in said.stderr and "already live" in said.stderr, said.stderr
    quiet = stack.raw_cli("-q", "status", "--config", str(stack.config))
    assert quiet.returncode == 0 and "green" in quiet.stdout
    progress = [x for x in quiet.stderr.splitlines() if x.startswith("· ") and not x.startswith("· warning")]
    assert progress == [] and "[engine]" not in quiet.stderr, quiet.stderr
    loud = stack.raw_cli("--verbose", "switch", "--to", "green", "--config", str(stack.config))
    assert loud.returncode == 0 and "already live" in loud.stderr
    assert "[engine] exec " in loud.stderr, loud.stderr
    assert "[engine]" not in said.stderr


def test_logs_follow_prints_new_lines_until_ctrl_c(stack):
    follow = stack.popen("logs", "backend", "-f", "--tail", "1")
    try:
        first = follow.stdout.readline()  # the last line so far, then it waits for more
        assert "listening on :8080 version=v2" in first, first
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.communicate()
    assert follow.returncode in (0, 130), err


def test_exec_runs_in_a_colour_and_passes_the_exit_code_through(stack):
    script = "echo in-$(cat /etc/hostname); echo to-stderr >&2; exit 3"
    # raw_cli: in the project's folder, so no --config lands after `--`
    live = stack.raw_cli("exec", "backend", "--", "sh", "-c", script)
    assert live.returncode == 3, live.stderr
    green = {c.id[:12] for c in stack.containers("green") if c.labels["deployer.service"] == "backend"}
    assert live.stdout.strip().removeprefix("in-") in green
    assert "to-stderr" in live.stderr
    standby = stack.raw_cli("exec", "backend", "--colour", "standby", "--", "cat", "/etc/hostname")
    assert standby.returncode == 0, standby.stderr
    blue = {c.id[:12] for c in stack.containers("blue") if c.labels["deployer.service"] == "backend"}
    assert standby.stdout.strip() in blue
    db = stack.raw_cli("exec", "db", "--", "pg_isready", "-q")
    assert db.returncode == 0, db.stderr

    one_line_exit_2(stack.raw_cli("exec", "nosuch", "--", "ls"), "nosuch")
    one_line_exit_2(stack.cli("exec", "backend"), "after `--`")
    one_line_exit_2(stack.raw_cli("exec", "backend", "--colour", "red", "--", "ls"), "--colour")


def test_exec_on_a_terminal_gives_the_command_a_terminal_and_its_exit_code(stack):
    """With a terminal on stdin, `exec` hands it to `docker exec -it` (the docker command owns
    the terminal): the command in the container sees a tty, and its exit code comes back."""
    import os
    import pty
    import sys

    main, child = pty.openpty()
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "deployer", "exec", "backend", "--", "sh", "-c", "test -t 0 && echo on-a-tty; exit 4"],
            stdin=child, stdout=child, stderr=subprocess.PIPE, cwd=stack.folder,
        )  # fmt: skip
        os.close(child)
        child = -1
        seen = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed: every process holding it has ended
                break
            if not chunk:
                break
            seen += chunk
        code = run.wait(timeout=60)
    finally:
        os.close(main)
        if child != -1:
            os.close(child)
    assert code == 4, (seen, run.stderr.read())
    assert b"on-a-tty" in seen, seen


def test_logs_finds_the_slow_requests_and_where_one_request_s_time_went(stack):
    """`logs --slow` lists the edge's slowest requests, slowest first, with their timing split;
    `logs --request` shows one request's edge line and the app's lines that name its id. (After
    the tests that read the backend's last lines: its slow path logs a line.)"""
    run = uuid.uuid4().hex[:8]
    slow_id, fast_id, front_id = f"slow-{run}", f"fast-{run}", f"front.{run}"
    assert stack.get("/api/slow?ms=400", headers={"X-Request-ID": slow_id}).status_code == 200
    assert stack.get("/api/version", headers={"X-Request-ID": fast_id}).status_code == 200
    assert stack.get("/slow?ms=250", headers={"X-Request-ID": front_id}).status_code == 200  # the front end's

    deadline = time.monotonic() + 20  # the edge writes its access log out within a second or two
    while True:
        found = json.loads(stack.ok("logs", "--slow", "200ms", "--since", "5m", "--json").stdout)
        ids = [e["request_id"] for e in found]
        if (slow_id in ids and front_id in ids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert slow_id in ids and front_id in ids and fast_id not in ids, ids
    assert ids.index(slow_id) < ids.index(front_id)  # slowest first
    slow = found[ids.index(slow_id)]
    assert (slow["service"], slow["prefix"], slow["status"], slow["path"]) == ("backend", "/api/", 200, "/api/slow")
    assert float(slow["upstream_time"]) >= 0.4 and float(slow["header_time"]) >= 0.4 and slow["time_total"] >= 0.4
    assert float(slow["connect_time"]) < 0.2  # the split says where the time went: the app, not the network

    def ids_of(*args: str) -> list[str]:
        return [e["request_id"] for e in json.loads(stack.ok("logs", "--slow", "200ms", *args, "--json").stdout)]

    assert slow_id in ids_of("--service", "backend") and front_id not in ids_of("--service", "backend")
    assert front_id in ids_of("--service", "frontend") and slow_id not in ids_of("--service", "frontend")
    assert ids_of("--tail", "1") == [ids[0]]
    plain = stack.ok("logs", "--slow", "200ms", "--since", "5m")  # on a pipe: tab-separated columns
    cells = next(x for x in plain.stdout.splitlines() if slow_id in x).split("\t")
    assert cells[1:5] == [slow_id, "backend", "/api/", "200"] and cells[-1] == "GET /api/slow", cells
    assert all(c.endswith(" ms") for c in cells[5:9]) and int(cells[7].split()[0]) >= 400, cells

    one = stack.ok("logs", "--request", slow_id)
    assert f'"request_id": "{slow_id}"' in one.stdout and "backend on green" in one.stdout, one.stdout
    assert f"backend: [testapp] slow request id={slow_id} GET /api/slow" in one.stdout, one.stdout
    fast = stack.ok("logs", "--request", fast_id, "--since", "5m")  # the app logs no line of it
    assert f'"request_id": "{fast_id}"' in fast.stdout and "backend: " not in fast.stdout
    assert "no line of backend in green" in fast.stderr, fast.stderr

    unknown = stack.cli("logs", "--request", f"none-{run}", "--since", "5m")
    assert unknown.returncode == 1 and "step 'logs'" in unknown.stderr and f"none-{run}" in unknown.stderr
    assert unknown.stdout == ""
    one_line_exit_2(stack.cli("logs", "--request", "bad id"), "--request")
    one_line_exit_2(stack.cli("logs", "--slow", "1s", "--service", "nosuch"), "--service", "nosuch")
    one_line_exit_2(stack.cli("logs", "--slow", "1s", "-f"), "--follow", "--slow")


def test_rollback_to_the_standby_to_a_version_and_to_kept_images(stack):
    assert stack.serving() == ("v2", "green")
    dry = stack.ok("rollback", "--dry-run")
    assert "would switch live traffic from green (v2) to blue (v1)" in dry.stderr, dry.stderr
    assert stack.serving() == ("v2", "green")

    stack.ok("rollback")  # the standby, whatever its colour
    assert stack.serving() == ("v1", "blue")
    stack.ok("rollback")
    assert stack.serving() == ("v2", "green")

    already = stack.ok("rollback", "v2")
    assert "green (v2) is already live" in already.stderr and stack.serving() == ("v2", "green")
    stack.ok("rollback", "v1")  # blue runs it: a switch
    assert stack.serving() == ("v1", "blue")

    kept = stack.ok("rollback", "v3", "--no-backup")  # no colour runs it: released from its kept images
    assert "release v3 from its kept images" in kept.stderr, kept.stderr
    assert stack.serving() == ("v3", "green")

    one_line_exit_2(stack.cli("rollback", "v1;reboot"), "invalid version")
    missing = stack.cli("rollback", "v9", "--no-backup")  # no image anywhere: refused before anything
    assert missing.returncode == 2, missing.stderr
    assert "its image" in missing.stderr and "v9" in missing.stderr and "nothing was changed" in missing.stderr
    assert len([line for line in missing.stderr.splitlines() if line.startswith("ERROR")]) == 1
    assert stack.serving() == ("v3", "green")
