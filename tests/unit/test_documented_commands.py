"""The command tables of both READMEs match the CLI: every command is documented, every
documented command exists, and every flag a row names is an option of that command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command

from deployer.cli.commands import app

ROOT = Path(__file__).resolve().parents[2]


def commands() -> dict[str, TyperCommand]:
    """'release', 'backup now', ...: every leaf command by its path."""
    found: dict[str, TyperCommand] = {}

    def walk(command: TyperCommand | TyperGroup, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = command

    walk(get_command(app), [])
    return found


def rows(readme: str) -> list[str]:
    """The first cell of each table row that documents a command (`deployer ...`)."""
    text = (ROOT / readme).read_text()
    return [m.group(1).replace("\\|", "|") for m in re.finditer(r"^\| `deployer ([^`]+)` \|", text, re.MULTILINE)]


def documented(readme: str) -> dict[str, str]:
    """command path -> its row's usage text; `backup now|list|...` documents each subcommand named."""
    known = commands()
    out: dict[str, str] = {}
    for usage in rows(readme):
        first, _, rest = usage.partition(" ")
        subs = [p.split(" ", 1)[1] for p in known if p.startswith(first + " ")]
        if not subs:
            out[first] = usage
        for sub in subs:
            if re.search(rf"(?<![\w-]){sub}(?![\w-])", rest):
                out[f"{first} {sub}"] = usage
    return out


@pytest.mark.parametrize("readme", ["README.md", "README.ko.md"])
def test_every_command_is_documented_and_every_documented_flag_exists(readme):
    known = commands()
    table = documented(readme)
    assert sorted(set(known) - set(table)) == [], f"{readme} lacks these commands"
    assert sorted(set(table) - set(known)) == [], f"{readme} documents commands that do not exist"
    for path, usage in table.items():
        options = {opt for p in known[path].params for opt in (*p.opts, *p.secondary_opts)}
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage):
            if flag == "--":
                continue
            group = [p for p in known if p.split(" ")[0] == path.split(" ")[0]]
            assert any(flag in {o for p in known[g].params for o in (*p.opts, *p.secondary_opts)} for g in group), (
                f"{readme}: `deployer {usage}` names {flag}, which no `deployer {path.split(' ')[0]}` command takes"
            )
        assert options  # every command takes at least --config or --help's like
