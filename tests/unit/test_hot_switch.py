"""`deployer switch` without typer (cli/hot.py): its plain forms are parsed as click parses
them, and every other command line is left to typer, which explains a wrong one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployer.cli import hot

PLAIN = [
    (["switch", "--to", "blue"], {"to": "blue"}),
    (["switch", "--to=green", "-c", "d.toml"], {"to": "green", "config": "d.toml"}),
    (
        ["-q", "switch", "-e", "prod", "--config=x/d.toml", "--to", "blue"],
        {"to": "blue", "env": "prod", "config": "x/d.toml", "quiet": "yes"},
    ),
    (["--verbose", "switch", "--env=staging", "--to", "red"], {"to": "red", "env": "staging", "verbose": "yes"}),
]


@pytest.mark.parametrize(("argv", "values"), PLAIN)
def test_a_plain_switch_is_parsed_here(argv, values):
    assert hot.parse(argv) == values


@pytest.mark.parametrize(("argv", "values"), PLAIN)
def test_click_reads_the_plain_forms_the_same(argv, values, monkeypatch):
    """The same command line through typer's switch: the same values reach the command."""
    from typer.testing import CliRunner

    from deployer.adapters import progress as reports
    from deployer.cli import base, commands

    seen = {}
    monkeypatch.setattr(commands, "run_switch", lambda to, config, env: seen.update(to=to, config=config, env=env))
    # what the global -q and -v set, put back after the test
    monkeypatch.setattr(base, "_QUIET", [False])
    monkeypatch.setattr(reports, "BUILD_LOG", list(reports.BUILD_LOG))
    monkeypatch.setattr(reports, "TRANSFER", list(reports.TRANSFER))
    monkeypatch.setenv("DEPLOYER_DEBUG", "")
    monkeypatch.delenv("DEPLOYER_CONFIG", raising=False)
    result = CliRunner().invoke(commands.app, argv)
    assert result.exit_code == 0, result.output
    config = Path(values["config"]) if "config" in values else None
    assert seen == {"to": values["to"], "config": config, "env": values.get("env")}


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["switch"],
        ["switch", "--help"],
        ["switch", "--to"],
        ["switch", "--to", "blue", "--to", "green"],
        ["switch", "--to", "-c"],
        ["switch", "--to", ""],
        ["switch", "--to", "blue", "extra"],
        ["switch", "-cfile", "--to", "blue"],
        ["switch", "-c=file", "--to", "blue"],
        ["switch", "--t", "blue"],
        ["-q", "-v", "switch", "--to", "blue"],
        ["-qv", "switch", "--to", "blue"],
        ["--version"],
        ["status"],
        ["rollback"],
        ["switch", "--", "--to", "blue"],
    ],
)
def test_any_other_command_line_goes_to_typer(argv):
    assert hot.parse(argv) is None


def test_a_completion_request_goes_to_typer(monkeypatch):
    monkeypatch.setenv("_DEPLOYER_COMPLETE", "complete_bash")
    assert hot.command(["switch", "--to", "blue"]) is None


@pytest.mark.parametrize("argv", [["switch", "--to", "red"], ["-q", "switch", "--to", "red"]])
def test_bad_input_on_the_fast_path_is_one_line_exit_2(argv, tmp_path):
    """An unknown colour, before the config is read (there is none here)."""
    done = subprocess.run(
        [sys.executable, "-m", "deployer", *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr == "ERROR (InputError): unknown colour 'red': use blue or green\n"


def test_a_missing_config_is_the_same_error_on_both_paths(tmp_path):
    """The fast path, and typer's (a repeated option goes there)."""
    runs = [
        subprocess.run(
            [sys.executable, "-m", "deployer", *argv, "--to", "blue", "-c", str(tmp_path / "none.toml")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for argv in (["switch"], ["switch", "-e", "x", "-e", "x"])  # a repeated option: typer's path
    ]
    assert runs[0].returncode == runs[1].returncode == 2
    assert runs[0].stderr.replace("[x] ", "") == runs[1].stderr.replace("[x] ", "")
