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
