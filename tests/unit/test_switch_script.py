"""The switch's one edge script, run by a real shell on a folder that stands in for the edge's
volume, with a stand-in curl that answers as the edge does (the health fan-out by the colour it
probes, the live route by the colour in `live`, the control socket's /reload): each of its
checks and each way back, as the edge runs them."""

from __future__ import annotations

import json
import subprocess

import pytest

from deployer.core import probe as probe_rule
from deployer.core import scripts, switchscript
from deployer.core.edgelayout import HOME
from deployer.core.state import Record, Target

# The edge, for this script's curl: answers each URL after `-o /dev/null` with the -w line,
# and writes what it was asked (with the live colour at that moment) to calls.log.
CURL = r"""#!/bin/sh
vol="$VOLUME"
live=$(cat "$vol/state/live" 2>/dev/null)
unix= fmt= failed=0
while [ $# -gt 0 ]; do
  case "$1" in
    --next) unix= fmt=;;
    --unix-socket) unix=1; shift;;
    -w) fmt=$2; shift;;
    -o) shift;;
    http://edge/reload)
      echo "reload live=$live" >> "$vol/../calls.log"
      code=${RELOAD_CODE:-200}
      case "$fmt" in notified*) echo "notified $code";; esac
      [ "$code" = 200 ] || failed=22;;
    http://*)
      url="$1"
      case "$url" in
        */_deployer/health/*) colour=${url##*/}; code=${HEALTH_CODE:-200};;
        *) colour=$live; code=${LIVE_CODE:-200};;
      esac
      echo "probe $url live=$live" >> "$vol/../calls.log"
      echo "probe $code $colour. 1a2b3c4d. $url";;
  esac
  shift
done
exit $failed
"""

BLUE = Record(
    "blue", "1a2b3c4d", "v2", (Target("backend", "backend-blue-1a2b3c4d", 8080, "/health"),), (("/", "backend"),)
)
GREEN = Record(
    "green", "9f8e7d6c", "v1", (Target("backend", "backend-green-9f8e7d6c", 8080, "/health"),), (("/", "backend"),)
)
TOKEN = "tok-switch"


@pytest.fixture
def edge(tmp_path):
    volume = tmp_path / "volume"
    (volume / "state").mkdir(parents=True)
    (volume / "deployment").write_text("dep12345")
    (volume / "state" / "live").write_text("green\n")
    (volume / "state" / "blue").write_text(BLUE.render())
    (volume / "state" / "green").write_text(GREEN.render())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(CURL)
    (bin_dir / "curl").chmod(0o755)
    hostname = tmp_path / "hostname"
    hostname.write_text("edge-a\n")

    def run(target: str = "blue", verify: bool = True, **env: str) -> subprocess.CompletedProcess:
        holder = json.dumps({"user": "ci", "host": "h", "pid": 1, "command": "switch", "since": 0, "token": TOKEN})
        line = json.dumps({"event": "switch", "colour": target, "previous": scripts.PREVIOUS})
        script = switchscript.switch(
            target,
            holder,
            TOKEN,
            30,
            [probe_rule.Probe(probe_rule.health_url(target), target)],
            [probe_rule.Probe(f"{probe_rule.LIVE}/", target)] if verify else [],
            line,
            2,
            "dep12345",
        )
        script = script.replace(HOME, str(volume)).replace("/etc/hostname", str(hostname))
        environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", "VOLUME": str(volume), **env}
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30, env=environ)

    run.volume = volume
    run.calls = lambda: (tmp_path / "calls.log").read_text().splitlines() if (tmp_path / "calls.log").exists() else []
    return run


def history(volume) -> list[dict]:
    path = volume / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_switch_checks_the_target_then_makes_it_live_verifies_records_and_frees_the_lock(edge):
    done = edge()
    assert done.returncode == 0, done
    probes = [
        f"probe 200 blue. 1a2b3c4d. {probe_rule.health_url('blue')}",
        f"probe 200 blue. 1a2b3c4d. {probe_rule.LIVE}/",
    ]
    assert done.stdout == "\n".join([*probes, "switched from green", BLUE.render()])
    assert (edge.volume / "state" / "live").read_text() == "blue\n"
    assert not (edge.volume / "lock").exists()
    assert history(edge.volume) == [{"event": "switch", "colour": "blue", "previous": "green"}]
    # health of the target while green was live, then the reload, then the live route verified
    assert edge.calls() == [
        f"probe {probe_rule.health_url('blue')} live=green",
        "reload live=blue",
        f"probe {probe_rule.LIVE}/ live=blue",
    ]


def test_a_switch_to_the_live_colour_changes_nothing(edge):
    edge()
    done = edge()
    assert (done.returncode, done.stdout) == (0, "already\n" + BLUE.render())
    assert len(history(edge.volume)) == 1 and not (edge.volume / "lock").exists()


def test_an_unhealthy_target_is_not_made_live(edge):
    done = edge(HEALTH_CODE="503")
    assert done.returncode == scripts.TARGET_UNHEALTHY, done
    assert probe_rule.failures([probe_rule.Probe(probe_rule.health_url("blue"), "blue")], done.stdout)
    assert (edge.volume / "state" / "live").read_text() == "green\n"
    assert history(edge.volume) == [] and not (edge.volume / "lock").exists()
    assert not any(call.startswith("reload") for call in edge.calls())


def test_a_target_that_fails_through_the_live_route_puts_the_old_colour_back(edge):
    done = edge(LIVE_CODE="502")
    assert done.returncode == scripts.VERIFY_FAILED and "restored" in done.stdout, done
    assert (edge.volume / "state" / "live").read_text() == "green\n"
    assert edge.calls()[-1] == "reload live=green"
    assert history(edge.volume) == [] and not (edge.volume / "lock").exists()


def test_an_edge_that_does_not_take_the_new_state_keeps_the_old(edge):
    done = edge(RELOAD_CODE="502")
    assert done.returncode == scripts.NOTIFY_FAILED, done
    assert (edge.volume / "state" / "live").read_text() == "green\n"
    assert history(edge.volume) == [] and not (edge.volume / "lock").exists()


def another_lock(volume, token: str, lease: int):
    """A lock another command holds (or held), with its lease's end (epoch seconds)."""
    lock = volume / "lock"
    lock.mkdir()
    (lock / "holder").write_text(f'{{"token": "{token}"}}')
    (lock / "lease").write_text(f"{lease}\n")
    return lock


def test_a_held_lock_refuses_and_stays(edge):
    lock = another_lock(edge.volume, "other", 99999999999)
    done = edge()
    assert done.returncode == scripts.LOCK_HELD and "held " in done.stdout, done
    assert (lock / "holder").read_text() == '{"token": "other"}'
    assert (edge.volume / "state" / "live").read_text() == "green\n" and edge.calls() == []


def test_a_target_without_a_release_or_with_a_killed_release_is_refused(edge):
    (edge.volume / "state" / "pending").write_text("colour blue\nrelease 1a2b3c4d\nversion v2\nprevious -\n")
    done = edge()
    assert done.returncode == scripts.PENDING and "colour blue" in done.stdout, done
    (edge.volume / "state" / "pending").unlink()
    (edge.volume / "state" / "blue").write_text("")
    assert edge().returncode == scripts.NO_RELEASE
    assert (edge.volume / "state" / "live").read_text() == "green\n" and not (edge.volume / "lock").exists()


def test_another_deployments_edge_is_refused_before_the_lock(edge):
    (edge.volume / "deployment").write_text("other123")
    done = edge()
    assert done.returncode == scripts.WRONG_DEPLOYMENT and done.stdout.strip() == "deployment other123", done
    assert not (edge.volume / "lock").exists()


def test_only_the_holders_token_renews_writes_or_frees_the_lock(edge, tmp_path):
    volume = edge.volume

    def sh(script: str) -> subprocess.CompletedProcess:
        script = script.replace(HOME, str(volume))
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)

    holder = json.dumps({"user": "ci", "host": "h", "pid": 1, "command": "release", "since": 0, "token": "tok-a"})
    assert sh(scripts.take_lock(holder, 30, "dep12345")).returncode == 0
    assert (volume / "lock" / "holder").read_text() == holder
    assert sh(scripts.renew_lock("tok-b", 30)).returncode == scripts.LOCK_LOST
    assert sh(scripts.renew_lock("tok-a", 30)).returncode == 0
    refused = sh(scripts.write_state("blue", "release 0000aaaa\n", "tok-b"))
    assert refused.returncode == scripts.LOCK_LOST and (volume / "state" / "blue").read_text() == BLUE.render()
    sh(scripts.free_lock("tok-b"))
    assert (volume / "lock").exists()
    sh(scripts.free_lock("tok-a"))
    assert not (volume / "lock").exists()


def test_a_history_line_and_a_record_are_written_as_they_are(edge):
    """printf writes the text (no base64 process), quotes and all; $old fills PREVIOUS once."""
    text = 'it\'s "quoted" $HOME `x` \\n %s\nline two\n'
    script = scripts.write_atomic(f"{HOME}/note", text).replace(HOME, str(edge.volume))
    assert subprocess.run(["sh", "-c", script], timeout=30).returncode == 0
    assert (edge.volume / "note").read_text() == text
    line = f'{{"x": "it\'s", "previous": "{scripts.PREVIOUS}", "again": "{scripts.PREVIOUS}"}}'
    shell = f"old=green; printf '%s\\n' {switchscript.with_previous(line)}"
    said = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30).stdout
    assert said == line.replace(scripts.PREVIOUS, "green", 1) + "\n"


@pytest.mark.parametrize("reload_code", ["200", "502"])
def test_without_probes_through_the_live_route_the_reload_alone_decides(edge, reload_code):
    done = edge(verify=False, RELOAD_CODE=reload_code)
    assert done.returncode == (0 if reload_code == "200" else scripts.NOTIFY_FAILED), done
    assert (edge.volume / "state" / "live").read_text() == ("blue\n" if reload_code == "200" else "green\n")
    assert not (edge.volume / "lock").exists()


def test_a_stale_lock_is_taken_over_and_said(edge):
    lock = another_lock(edge.volume, "gone", 1)
    done = edge()
    assert done.returncode == 0, done
    assert done.stdout.startswith("stale ") and "switched from green" in done.stdout
    assert (edge.volume / "state" / "live").read_text() == "blue\n" and not lock.exists()


def test_a_switch_that_ends_before_its_probe_is_judged_leaves_no_probe_behind(edge):
    """`already`: the background probe is stopped and its answers go with the lock's folder."""
    (edge.volume / "state" / "live").write_text("blue\n")
    done = edge()
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "already")
    assert not (edge.volume / "lock").exists()
