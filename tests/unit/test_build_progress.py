"""A build's own output, as the CLI shows it (cli/progress.py): plain lines on a pipe, a
folded view on a terminal (under a pseudo-terminal here) that is gone when the build ends
and printed whole when it fails, nothing under -q; and which builder builds
(adapters/build.py), and the OCI labels an app's image gets."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.adapters import build, buildenv
from deployer.adapters import progress as reports
from deployer.errors import InputError
from deployer.flows.images import oci_labels

SHOW = """
import sys, time
from deployer.cli.progress import build_log
fail = sys.argv[1] == "fail"
quiet = sys.argv[2] == "quiet"
try:
    with build_log("shop-backend:v2", quiet=quiet) as show:
        for n in range(12):
            show(f"#{n} step {n}")
            time.sleep(0.01)
        if fail:
            raise RuntimeError("the build failed")
except RuntimeError:
    print("failed", file=sys.stderr)
print("done", file=sys.stderr)
"""


MOVE = """
import sys, time
from deployer.cli import progress
progress.PLAIN_EVERY = 0.05
with progress.transfer("shop-backend:v2 to ssh://web1", quiet=sys.argv[2] == "quiet") as update:
    for n in range(1, 11):
        update(n * 3_000_000, 30_000_000 if sys.argv[1] == "sized" else None)
        time.sleep(0.06)
print("done", file=sys.stderr)
"""


def on_a_pipe(*args: str, script: str = SHOW) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def on_a_terminal(*args: str, script: str = SHOW) -> str:
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the pseudo-terminal
        os.execv(sys.executable, [sys.executable, "-c", script, *args])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child ended
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


def test_a_pipe_gets_every_line_plainly_and_quiet_gets_none():
    lines = on_a_pipe("ok", "normal").splitlines()
    assert lines == [f"  shop-backend:v2 | #{n} step {n}" for n in range(12)] + ["done"]
    assert on_a_pipe("ok", "quiet").splitlines() == ["done"]


def test_a_terminal_gets_a_folded_view_that_is_gone_when_the_build_ends():
    shown = on_a_terminal("ok", "normal")
    assert "building shop-backend:v2" in shown and "#11 step 11" in shown
    assert "\x1b[" in shown, "drawn in place with the terminal's control sequences"
    assert "  shop-backend:v2 | #0 step 0" not in shown, "no plain lines on a terminal"
    failed = on_a_terminal("fail", "normal")
    assert all(f"  shop-backend:v2 | #{n} step {n}" in failed for n in range(12)), "a failure prints the whole log"


def test_a_transfer_shows_its_bytes_and_rate_as_a_bar_or_as_lines():
    lines = on_a_pipe("sized", "normal", script=MOVE).splitlines()
    assert len(lines) >= 4 and lines[-1] == "done", lines
    assert lines[-2].startswith("  shop-backend:v2 to ssh://web1: ") and " of 30.0 MB, " in lines[-2]
    assert lines[-2].endswith(" MB/s")
    assert " of " not in on_a_pipe("unsized", "normal", script=MOVE).splitlines()[0]
    assert on_a_pipe("sized", "quiet", script=MOVE).splitlines() == ["done"]
    shown = on_a_terminal("sized", "normal", script=MOVE)
    assert "shop-backend:v2 to ssh://web1" in shown and "30.0 MB" in shown and "\x1b[" in shown


def test_a_push_or_pull_sums_its_layers_progress():
    seen: list[tuple[int, int | None]] = []
    layers = reports.Layers(lambda done, total: seen.append((done, total)))
    layers.event({"status": "Preparing", "id": "a1"})  # no bytes yet: nothing said
    layers.event({"status": "Pushing", "id": "a1", "progressDetail": {"current": 512, "total": 2048}})
    layers.event({"status": "Pushing", "id": "b2", "progressDetail": {"current": 100, "total": 1000}})
    layers.event({"status": "Pushing", "id": "a1", "progressDetail": {"current": 2048, "total": 2048}})
    layers.event({"aux": {"Digest": "sha256:0"}})
    assert seen == [(512, 2048), (612, 3048), (2148, 3048)]


def test_the_builder_is_buildx_unless_it_is_missing_or_classic_is_asked(monkeypatch):
    build.builder.cache_clear()
    monkeypatch.setenv("DEPLOYER_BUILDER", "classic")
    assert build.builder() == "classic"
    build.builder.cache_clear()
    monkeypatch.setenv("DEPLOYER_BUILDER", "kaniko")
    with pytest.raises(InputError, match="DEPLOYER_BUILDER='kaniko': buildx \\(the default\\) or classic"):
        build.builder()
    build.builder.cache_clear()
    monkeypatch.delenv("DEPLOYER_BUILDER")
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker CLI at all
    assert build.builder() == "classic"
    build.builder.cache_clear()
    said: list[str] = []
    build._SAID.clear()
    build._say_classic_once(said.append)
    build._say_classic_once(said.append)
    assert len(said) == 1 and said[0].startswith("warning: building with the classic builder")


def test_an_app_image_says_what_it_was_built_from(tmp_path: Path):
    assert oci_labels(tmp_path, "v7") == {"org.opencontainers.image.version": "v7"}  # no git there
    git = ["git", "-C", str(tmp_path), "-c", "user.email=a@b.c", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://ci:s3cr3t@git.example.com/team/shop.git"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert oci_labels(tmp_path, "v7") == {
        "org.opencontainers.image.version": "v7",
        "org.opencontainers.image.revision": head,
        "org.opencontainers.image.source": "https://git.example.com/team/shop.git",  # no credentials
    }


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("DEPLOYER_CACHE_FROM", "ref=ghcr.io/me/cache", "names no type="),
        ("DEPLOYER_CACHE_FROM", "type=registry,,ref=x", "each part is key=value"),
        ("DEPLOYER_CACHE_TO", "type=gha;type=local,dest=/c", "one cache to export to, not 2"),
        ("DEPLOYER_CACHE_TO", "type=registry,ref=", "each part is key=value"),
    ],
)
def test_a_malformed_cache_setting_is_bad_input_before_anything_builds(monkeypatch, name, value, words):
    build.builder.cache_clear()
    monkeypatch.delenv("DEPLOYER_BUILDER", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=f"^{name}") as refused:
        buildenv.check_environment()
    assert words in str(refused.value)


def test_cache_settings_in_buildx_notation_pass(monkeypatch):
    build.builder.cache_clear()
    monkeypatch.setenv("DEPLOYER_CACHE_FROM", "type=gha,scope=images; type=registry,ref=ghcr.io/me/cache")
    monkeypatch.setenv("DEPLOYER_CACHE_TO", "type=gha,scope=images,mode=max")
    buildenv.check_environment()
    assert buildenv.cache_specs("DEPLOYER_CACHE_FROM") == [
        "type=gha,scope=images",
        "type=registry,ref=ghcr.io/me/cache",
    ]


def test_the_classic_builder_gets_the_templates_without_their_cache_mounts():
    templates = Path(build.__file__).parent.parent / "assets" / "templates"
    for name in ("spring-boot.Dockerfile", "nextjs.Dockerfile"):
        text = (templates / name).read_text()
        assert "--mount=type=cache" in text
        with build._without_cache_mounts(str(templates), str(templates / name)) as plain:
            stripped = Path(plain).read_text()
        assert "--mount" not in stripped
        runs = [
            line.split("RUN", 1)[1].split("--mount")[0].strip() for line in text.splitlines() if line.startswith("RUN")
        ]
        assert len(runs) == stripped.count("\nRUN ")  # every step is still there
    with build._without_cache_mounts(str(templates), None) as same:  # no cache mount: the file as it is
        assert same is None


def test_the_agents_progress_lines_reach_the_transfer_display():
    from deployer.flows.agent_call import _Reply

    seen, said = [], []
    reply = _Reply(said.append, lambda done, total: seen.append((done, total)))
    reply.feed(b'{"pid": 7}\n{"bytes": 1048576, "of": null}\n{"say": "dump x: 1 MB"}\n{"bytes": 5, "of": 10}\n')
    reply.feed(b'{"bytes": "x"}\n{"result": {"name": "x"}}\n')
    assert seen == [(1048576, None), (5, 10)] and said == ["dump x: 1 MB"]
    assert reply.outcome(0, "", "backup") == {"name": "x"}
