"""One grammar for a colour, a release id and a service name: core/names.py. The edge's Lua
and its entrypoint's shell are baked into its image, so they are held here to the same
table of examples; the site template is rendered with the patterns of core/names.py, and
what it renders is checked here too."""

from __future__ import annotations

import re
import string
from pathlib import Path

from deployer.core import names, site

EDGE = Path(__file__).resolve().parents[2] / "deployer" / "assets" / "edge"
LUA = EDGE / "lua" / "deployer"

# kind -> (names it accepts, names it refuses)
EXAMPLES = {
    "colour": (["blue", "green"], ["", "Blue", "red", "blu", "blue ", "bluegreen", "greens", "-"]),
    "release": (
        ["1a2b3c4d", "00000000", "ffffffff", "deadbeef"],
        ["", "-", "1a2b3c4", "1a2b3c4d5", "1A2B3C4D", "1a2b3c4g", "1a2b-c4d", " 1a2b3c4d", "1a2b3c4d\n"],
    ),
    "service": (
        ["a", "api", "backend", "ai-gateway", "a1", "web2", "a--b", "x" * 24],
        ["", "1api", "-api", "api-", "Api", "api_v2", "api.v2", "a b", "x" * 25, "-", "é", "api\n"],
    ),
}
PYTHON = {
    "colour": lambda name: name in names.COLOURS,
    "release": lambda name: bool(names.RELEASE_ID.fullmatch(name)),
    "service": lambda name: bool(names.SERVICE_NAME.fullmatch(name)),
}


def agrees(kind: str, accepts, *, newline: bool = True) -> list[str]:
    """The examples of `kind` on which `accepts` disagrees with the table (newline=False: but
    those that end in a newline, which a regular expression's `$` lets through)."""
    good, bad = EXAMPLES[kind]
    bad = [n for n in bad if newline or not n.endswith("\n")]
    return [f"accepts {n!r}" for n in bad if accepts(n)] + [f"refuses {n!r}" for n in good if not accepts(n)]


def test_the_python_rules_follow_the_table():
    for kind, accepts in PYTHON.items():
        assert agrees(kind, accepts) == [], kind


# -- Lua patterns, read as Python regular expressions -------------------------------------------
LUA_CLASSES = {
    "a": "A-Za-z",
    "d": "0-9",
    "l": "a-z",
    "u": "A-Z",
    "x": "0-9A-Fa-f",
    "w": "0-9A-Za-z",
    "s": r" \t\n\r\f\v",
    "p": re.escape(string.punctuation),
}


def _lua_escape(char: str, in_set: bool) -> str:
    if char in LUA_CLASSES:
        return LUA_CLASSES[char] if in_set else f"[{LUA_CLASSES[char]}]"
    if char.lower() in LUA_CLASSES and not in_set:
        return f"[^{LUA_CLASSES[char.lower()]}]"
    return re.escape(char)


def lua_regex(pattern: str) -> re.Pattern[str]:
    """A Lua pattern (the subset the edge uses: anchors, %-classes, sets, quantifiers and
    captures) as the Python regular expression that matches the same strings."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%":
            out.append(_lua_escape(pattern[i + 1], in_set=False))
            i += 2
        elif c == "[":
            j, body = i + 1, ["["]
            if pattern[j] == "^":
                body.append("^")
                j += 1
            while pattern[j] != "]" or j == i + 1:
                if pattern[j] == "%":
                    body.append(_lua_escape(pattern[j + 1], in_set=True))
                    j += 2
                    continue
                body.append("-" if pattern[j] == "-" and pattern[j + 1] != "]" else re.escape(pattern[j]))
                j += 1
            out.append("".join(body) + "]")
            i = j + 1
        else:
            anchor = (c == "^" and i == 0) or (c == "$" and i == len(pattern) - 1)
            out.append(c if anchor or c in "()+*?" else "*?" if c == "-" else r"[\s\S]" if c == "." else re.escape(c))
            i += 1
    return re.compile("".join(out).replace("$", r"\Z") if pattern.endswith("$") else "".join(out))


def test_lua_patterns_read_as_lua_reads_them():
    assert lua_regex("^[a-z][a-z0-9-]*[a-z0-9]$").search("ai-gateway")
    assert not lua_regex("^[a-z0-9-]+$").search("a_b")
    assert lua_regex("^(%a+) (.*)$").search("release 1a2b").groups() == ("release", "1a2b")
    assert lua_regex("^%x+$").search("DEADbeef") and not lua_regex("^%x+$").search("beef\n")
    assert lua_regex("|([^|]*)$").search("s|live|blue|1a2b3c4d").group(1) == "1a2b3c4d"


def lua_code(path: Path) -> str:
    """A Lua file without its comments."""
    return "\n".join(re.sub(r"--(?![^\"]*\"[^\"]*$).*", "", line) for line in path.read_text().splitlines())


def lua_grammar() -> dict[str, tuple[int, int, list[re.Pattern[str]]]]:
    """state.lua's GRAMMAR: kind -> (shortest, longest, its patterns)."""
    table = re.search(r"local GRAMMAR = \{\n(.*?)\n\}", (LUA / "state.lua").read_text(), re.S)
    assert table, "state.lua has no GRAMMAR table"
    found = {}
    for kind, low, high, patterns in re.findall(r"(\w+) = \{ (\d+), (\d+), (.*) \},", table.group(1)):
        found[kind] = (int(low), int(high), [lua_regex(p) for p in re.findall(r'"([^"]*)"', patterns)])
    return found


def lua_accepts(rule: tuple[int, int, list[re.Pattern[str]]]):
    """What state.lua's `is` does with a rule: the length within the bounds, and one pattern."""
    low, high, patterns = rule
    return lambda name: low <= len(name) <= high and any(p.search(name) for p in patterns)


def test_the_lua_grammar_follows_the_table():
    grammar = lua_grammar()
    assert set(grammar) == {"release", "service"}
    for kind, rule in grammar.items():
        assert agrees(kind, lua_accepts(rule)) == [], kind
    colours = re.search(r'local COLOURS = \{ ("[a-z]+"(?:, "[a-z]+")*) \}', (LUA / "state.lua").read_text())
    assert colours and tuple(re.findall(r'"([a-z]+)"', colours.group(1))) == names.COLOURS


def test_no_lua_module_writes_the_grammar_again():
    for path in sorted(LUA.glob("*.lua")):
        code = lua_code(path)
        for colour in names.COLOURS:
            lines = [line for line in code.splitlines() if re.search(rf"\b{colour}\b", line)]
            listed = "local COLOURS = { " + ", ".join(f'"{c}"' for c in names.COLOURS) + " }"
            assert lines == ([listed] if path.name == "state.lua" else []), path.name
        hex_lines = [line.strip() for line in code.splitlines() if "0-9a-f" in line or "%x" in line]
        assert hex_lines == (['release = { 8, 8, "^[0-9a-f]+$" },'] if path.name == "state.lua" else []), path.name
        # a service name is matched by state.lua's `is`, not by a pattern of its own
        assert "[a-z0-9-]" not in code.replace('"^[a-z][a-z0-9-]*[a-z0-9]$"', ""), path.name


# -- the site template and the entrypoint's shell ------------------------------------------------
def health_locations(make_config) -> list[re.Pattern[str]]:
    cfg = make_config(
        '[project]\nname = "shop"\n[services.web]\nimage = "w"\nport = 3000\nhealth = "/h"\nroutes = ["/"]\n'
        '[database]\nenv_file = "db.env"\n'
    )
    text = site.render(cfg, EDGE / "site.conf.j2")
    found = re.findall(r'location ~ "(\^/_deployer/health/[^"]*)"', text)
    assert len(found) == 2
    return [re.compile(p.replace("(?<", "(?P<")) for p in found]


def test_the_rendered_site_reads_health_paths_with_the_table(make_config):
    one, every = health_locations(make_config)
    colour, release, service = (EXAMPLES[k][0][0] for k in ("colour", "release", "service"))
    checks = {
        "colour": lambda n: bool(one.match(f"/_deployer/health/{n}-{release}/{service}")),
        "release": lambda n: bool(one.match(f"/_deployer/health/{colour}-{n}/{service}")),
        "service": lambda n: bool(one.match(f"/_deployer/health/{colour}-{release}/{n}")),
    }
    # PCRE's `$`, as Python's, also matches before a last newline: the router then finds no
    # such release or service, and answers 404.
    for kind, accepts in checks.items():
        assert agrees(kind, accepts, newline=False) == [], kind
    assert agrees("colour", lambda n: bool(every.match(f"/_deployer/health/{n}")), newline=False) == []
    assert agrees("release", lambda n: bool(every.match(f"/_deployer/health/{colour}-{n}")), newline=False) == []
    m = one.match(f"/_deployer/health/{colour}/{service}")
    assert m and m.group("h_colour", "h_release", "h_service") == (colour, None, service)


def test_the_site_template_writes_no_grammar_of_its_own():
    code = "\n".join(line.split("#")[0] for line in (EDGE / "site.conf.j2").read_text().splitlines())
    assert not re.search(r"\b(?:blue|green)\b|0-9a-f|a-z0-9-", code)


def test_the_entrypoint_reads_a_colour_with_the_table():
    text = (EDGE / "edge-entrypoint.sh").read_text()
    bre = re.findall(r"s/\^live=\\\((.*?)\\\)\$/", text)
    assert len(bre) == 1
    pattern = re.compile(bre[0].replace(r"\|", "|"))
    assert agrees("colour", lambda n: bool(pattern.fullmatch(n))) == []
    assert len(re.findall(r"\b(?:blue|green)\b", text)) == len(names.COLOURS)  # that line only
