"""The one probe rule: the curl the edge runs, and how its answers are judged."""

from __future__ import annotations

import subprocess

from deployer.core import probe


def test_urls():
    assert probe.health_url("blue", "api", "1a2b3c4d") == "http://127.0.0.1:8081/_deployer/health/blue-1a2b3c4d/api"
    assert probe.health_url("green") == "http://127.0.0.1:8081/_deployer/health/green"


def _judge(probes, lines) -> int:
    """Run the script's awk judge on canned curl output (the curl is replaced by printf)."""
    script = probe.script(probes, 2)
    judge = script[script.index("| awk") + 2 :]
    text = "".join(line + "\n" for line in lines)
    return subprocess.run(["sh", "-c", f"printf %s {sh_quote(text)} | {judge}"], capture_output=True).returncode


def sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_the_judge_wants_status_colour_and_release():
    p = [probe.Probe("http://x/a", "blue", "1a2b3c4d"), probe.Probe("http://x/b", "blue")]
    good = ["probe 200 blue. 1a2b3c4d. http://x/a", "probe 302 blue. 99999999. http://x/b"]
    assert _judge(p, good) == 0
    assert _judge(p, ["probe 200 blue. 1a2b3c4d. http://x/a", "probe 503 blue. x. http://x/b"]) == 1
    assert _judge(p, ["probe 200 green. 1a2b3c4d. http://x/a", good[1]]) == 1
    assert _judge(p, ["probe 200 blue. 00000000. http://x/a", good[1]]) == 1
    assert _judge(p, good[:1]) == 1  # an answer missing


def test_failures_say_why():
    p = [
        probe.Probe("http://x/a", "blue", "1a2b3c4d"),
        probe.Probe("http://x/b", "blue"),
        probe.Probe("http://x/c", "blue"),
    ]
    out = "probe 200 green. 1a2b3c4d. http://x/a\nprobe 000 . . http://x/b\n"
    assert probe.failures(p, out) == [
        "http://x/a: answered by green, expected blue",
        "http://x/b: no answer",
        "http://x/c: no answer",
    ]
    assert probe.failures(p[:1], "probe 200 blue. 1a2b3c4d. http://x/a\n") == []


def test_the_poll_repeats_inside_one_shell_until_ready(tmp_path):
    """The health wait's loop (run inside the edge) with a stand-in curl that fails twice."""
    fake = tmp_path / "curl"
    fake.write_text(
        "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count\n"
        'if [ "$n" -lt 2 ]; then echo "probe 503 blue. 1a2b3c4d. http://x/a"; '
        'else echo "probe 200 blue. 1a2b3c4d. http://x/a"; fi\n'
    )
    fake.chmod(0o755)
    p = [probe.Probe("http://x/a", "blue", "1a2b3c4d")]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    run = subprocess.run(
        ["sh", "-c", probe.poll_script(p, 2, budget=5, interval=0.05)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and run.stdout.rstrip().endswith("ready")
    assert (tmp_path / "count").read_text().strip() == "3"
    (tmp_path / "count").write_text("-100")
    run = subprocess.run(
        ["sh", "-c", probe.poll_script(p, 2, budget=0.3, interval=0.05)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and probe.failures(p, run.stdout) == ["http://x/a: HTTP 503"]


def test_once_ready_the_poll_runs_the_then_probes_in_the_same_shell(tmp_path):
    """A release's smoke probes ride on the health wait's last exec; their verdict is apart."""
    fake = tmp_path / "curl"
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do case $a in http://*) url=$a;; esac; done\n'
        'case $url in */smoke) echo "probe 500 blue. 1a2b3c4d. $url";; *) echo "probe 200 blue. 1a2b3c4d. $url";; esac\n'
    )
    fake.chmod(0o755)
    health = [probe.Probe("http://x/health", "blue", "1a2b3c4d")]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}

    def poll(then):
        script = probe.poll_script(health, 2, budget=1, interval=0.05, then=then)
        run = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
        return probe.polled(health, then, run.stdout, run.returncode == 0)

    assert poll([probe.Probe("http://x/ok", "blue", "1a2b3c4d")]) == ([], [])
    assert poll([probe.Probe("http://x/smoke", "blue")]) == ([], ["http://x/smoke: HTTP 500"])
    assert poll([]) == ([], None)
    assert probe.polled(health, [], "probe 503 blue. 1a2b3c4d. http://x/health\n", False) == (
        ["http://x/health: HTTP 503"],
        None,
    )
