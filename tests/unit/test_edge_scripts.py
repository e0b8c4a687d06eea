"""The shell scripts run in the edge, built without I/O; run here with a real sh on temp files."""

from __future__ import annotations

import subprocess

from deployer import edge_scripts as scripts
from deployer.plan import Routes


def run(script: str, root) -> subprocess.CompletedProcess:
    """Run a script with the edge's state folder mapped to a temp dir."""
    text = script.replace(scripts.STATE, str(root))
    return subprocess.run(["sh", "-c", text], capture_output=True, text=True)


def test_write_atomic_leaves_no_temp_file(tmp_path):
    assert run(scripts.write_atomic(f"{scripts.STATE}/routes", "live=blue\npreview=\n"), tmp_path).returncode == 0
    assert (tmp_path / "routes").read_text() == "live=blue\npreview=\n"
    assert [p.name for p in tmp_path.iterdir()] == ["routes"]


def test_lock_is_exclusive_and_only_its_token_frees_it(tmp_path):
    first = run(scripts.take_lock('{"token": "aaa"}'), tmp_path)
    assert first.returncode == 0
    second = run(scripts.take_lock('{"token": "bbb"}'), tmp_path)
    assert second.returncode == scripts.LOCK_HELD
    assert second.stdout.startswith("held ")
    run(scripts.free_lock("bbb"), tmp_path)
    assert (tmp_path / "lock").exists()
    run(scripts.free_lock("aaa"), tmp_path)
    assert not (tmp_path / "lock").exists()


def test_history_line_is_quoted_safely(tmp_path):
    line = '{"note": "it\'s $(rm -rf /) `x`"}'
    assert run(scripts.append_history(line), tmp_path).returncode == 0
    assert (tmp_path / "history.jsonl").read_text() == line + "\n"


def test_switch_script_refuses_when_probe_fails_and_frees_the_lock(tmp_path):
    (tmp_path / "routes").write_text(Routes("blue", "").render())
    # curl to a closed port fails, so the target is "unhealthy".
    script = scripts.switch("green", "green-0badf00d", '{"token":"t1"}', "t1", ["http://127.0.0.1:9/x"], [], "{}", 1)
    result = run(script, tmp_path)
    assert result.returncode == scripts.TARGET_UNHEALTHY
    assert "probe 000 [] http://127.0.0.1:9/x" in result.stdout
    assert (tmp_path / "routes").read_text() == "live=blue\npreview=\n"
    assert not (tmp_path / "lock").exists()


def test_switch_script_when_target_already_live(tmp_path):
    (tmp_path / "routes").write_text(Routes("green", "blue").render())
    result = run(scripts.switch("green", "green", '{"token":"t"}', "t", [], [], "{}", 1), tmp_path)
    assert result.returncode == 0 and result.stdout.strip().endswith("already")
    assert not (tmp_path / "lock").exists()


def test_switch_script_swaps_and_records_previous(tmp_path):
    (tmp_path / "routes").write_text(Routes("blue", "green", live_host="blue-1234abcd", preview_host="green").render())
    line = '{"action": "switch", "previous": "__PREVIOUS__"}'
    result = run(scripts.switch("green", "green-5678ef90", '{"token":"t"}', "t", [], [], line, 1), tmp_path)
    assert result.returncode == 0, result.stderr
    # The target's release host goes live; the old live colour and its host become the preview.
    assert Routes.parse((tmp_path / "routes").read_text()) == Routes(
        live="green", preview="blue", live_host="green-5678ef90", preview_host="blue-1234abcd"
    )
    assert (tmp_path / "history.jsonl").read_text() == '{"action": "switch", "previous": "blue"}\n'


def test_commit_restores_routes_when_verification_fails(tmp_path):
    before = Routes("blue", "green")
    (tmp_path / "routes").write_text(before.render())
    (tmp_path / "lock").mkdir()
    (tmp_path / "lock" / "holder").write_text('{"token": "t"}')
    script = scripts.commit(Routes("green", "blue"), before, ["http://127.0.0.1:9/health"], "{}", "t", 1)
    result = run(script, tmp_path)
    assert result.returncode == scripts.VERIFY_FAILED
    assert (tmp_path / "routes").read_text() == before.render()


def test_probe_requires_the_expected_colour():
    text = scripts.probe(["http://127.0.0.1/a", "http://127.0.0.1/b"], "green", 2)
    assert text.count("-o /dev/null") == 2
    assert "c='[green]'" in text and "--max-time 2" in text

