"""One grammar for a colour, a release id and a service name: core/names.py. The edge's
entrypoint's shell is baked into its image, so it is held here to the same table of
examples; the site template is rendered with the patterns of core/names.py, and what it
renders is checked here too."""

from __future__ import annotations

import re
from pathlib import Path

from deployer.core import names, site

EDGE = Path(__file__).resolve().parents[2] / "deployer" / "assets" / "edge"

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
