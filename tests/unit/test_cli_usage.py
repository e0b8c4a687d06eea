"""Usage errors (a bad or missing option or argument, an unknown command) are one line on
stderr naming the problem, exit code 2, like every other bad input. Found while parsing,
before the config is read or an engine is contacted."""

from __future__ import annotations

import subprocess
import sys

import pytest


def deployer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deployer", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "names", "where"),
    [
        (["prune", "--keep", "-1"], "'--keep'", "deployer prune --help"),
        (["maintenance", "on", "--retry-after", "soon"], "'--retry-after'", "deployer maintenance on --help"),
        (["switch"], "'--to'", "deployer switch --help"),
        (["status", "extra-arg"], "extra-arg", "deployer status --help"),
        (["release"], "'VERSION'", "deployer release --help"),
        (["nosuchcommand"], "'nosuchcommand'", "deployer --help"),
        (["stauts"], "Did you mean 'status'? (see", "deployer --help"),
        (["backup", "nwo"], "Did you mean 'now'? (see", "deployer backup --help"),
        (["backup", "nosuch"], "'nosuch'", "deployer backup --help"),
        (["--bogus"], "No such option '--bogus'.", "deployer --help"),
        (["status", "--jsn"], "No such option '--jsn'. Did you mean '--env', '--json'? (see", "deployer status --help"),
        (["release", "-v1"], "No such option '-v'. (see", "deployer release --help"),
    ],
)
def test_a_usage_error_is_one_line(args, names, where):
    result = deployer(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ERROR: ")
    assert names in lines[0]
    assert lines[0].endswith(f"{where})")
    assert lines[0].count("Did you mean") <= 1  # once: an old typer and click each added one
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr
    assert result.stdout == ""


def test_help_is_unchanged():
    result = deployer("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ") and "Commands:" in result.stdout and "prune" in result.stdout
    assert result.stderr == ""

    result = deployer("prune", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout and "--keep" in result.stdout


def test_no_command_shows_the_help_as_before():
    for args in ([], ["backup"]):
        result = deployer(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("Usage: ") and "Commands:" in result.stderr
        assert "ERROR" not in result.stderr


def test_version():
    result = deployer("--version")
    assert result.returncode == 0 and result.stdout.startswith("deployer ")


def test_a_dropped_engine_connection_is_an_engine_error_that_names_its_step():
    """A transport error that escaped an adapter (a dropped ssh tunnel) is exit 1 naming the
    step, not an internal error."""
    import requests
    from docker.errors import APIError

    from deployer.adapters.failures import lost
    from deployer.errors import EngineError, UnreachableError

    dropped = lost(requests.exceptions.ConnectionError("Connection aborted."), "health")
    assert isinstance(dropped, UnreachableError) and dropped.step == "health" and dropped.exit_code == 1
    assert "lost the connection to the engine" in str(dropped)
    assert isinstance(lost(APIError("boom")), EngineError)
    assert lost(ValueError("a bug")) is None


def test_no_help_page_shows_an_escape():
    """Every command's and group's --help is plain text: no backslash (an old typer printed
    "\\[required]" on most pages), no markup."""
    from typer.core import TyperGroup
    from typer.main import get_command
    from typer.testing import CliRunner

    from deployer.cli.commands import app

    def pages(command, path: list[str]):
        yield path
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                yield from pages(sub, [*path, name])

    runner = CliRunner()
    seen = 0
    for path in pages(get_command(app), []):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0 and result.output.startswith("Usage: "), (path, result.output)
        assert "\\" not in result.output and "[/" not in result.output, (path, result.output)
        seen += 1
    assert seen >= 30


def test_quiet_and_verbose_go_one_at_a_time():
    result = deployer("-q", "-v", "status")
    assert result.returncode == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("ERROR: -q/--quiet and -v/--verbose go one at a time (see ") and "\n" not in line
    assert line.endswith("deployer --help)")


def test_shell_completion_completes_commands_and_prints_its_script():
    import os
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("deployer"))  # the installed command, as a shell calls it
    env = {**os.environ, "COMP_WORDS": "deployer backup ", "COMP_CWORD": "2", "_DEPLOYER_COMPLETE": "complete_bash"}
    completed = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["now", "list", "verify", "drill", "fetch", "base", "restore", "prune"]
    # the shell is detected from the parent processes: a bash that runs it (and does not exec it)
    script = subprocess.run(
        ["bash", "-c", f"'{exe}' --show-completion; exit $?"], capture_output=True, text=True, timeout=60
    )
    assert script.returncode == 0 and "_deployer_completion()" in script.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--slow", "1s", "-f"], "-f/--follow does not go with --slow"),
        (["--slow", "1s", "--request", "abc"], "--request does not go with --slow"),
        (["--slow", "1s", "backend"], "SERVICE does not go with --slow (name a service with --service)"),
        (["--slow", "1s", "--colour", "blue"], "--colour does not go with --slow"),
        (["--slow", "soon"], "--slow must be a duration"),
        (["--slow", "-1s"], "--slow must be a duration"),
        (["--request", "a:b"], "--request must be 1 to 200 characters"),
        (["--request", "x" * 201], "--request must be 1 to 200 characters"),
        (["--request", "abc", "-f"], "-f/--follow does not go with --request"),
        (["--request", "abc", "--tail", "3"], "--tail does not go with --request"),
        (["--request", "abc", "--service", "backend"], "--service does not go with --request"),
        (["--request", "abc", "--json"], "--json does not go with --request"),
        (["--service", "backend"], "--service goes with --slow"),
        (["backend", "--json"], "--json goes with --slow"),
    ],
)
def test_logs_search_flags_that_do_not_go_together_are_one_line(args, words, tmp_path):
    """Checked before the config is read (there is none here): exit 2, one line, nothing done."""
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "logs", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("ERROR (InputError): ") and words in lines[0], lines[0]
    assert result.stdout == "" and "Traceback" not in result.stderr
