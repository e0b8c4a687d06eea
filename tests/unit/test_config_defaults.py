"""Each config default is written once, in the model (deployer/config/model.py): the readers
take it from there, and the annotated example and the docs' tables are held to it here, so
a default changed in one place only fails this module."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from deployer.config import parse
from deployer.config.model import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_HEADERS,
    Backup,
    Build,
    Config,
    Database,
    Disk,
    Edge,
    Engine,
    Limits,
    Notify,
    Registry,
    Route,
    Service,
    Swarm,
    Timeouts,
    Tls,
    Watch,
)
from deployer.core.durations import parse_duration, parse_size

ROOT = Path(__file__).resolve().parents[2]
NONE = object()  # a key without a default: required, or None / "" / () until set

# A section of deployer.toml -> the model class that holds its keys' defaults.
MODELS: dict[str, type] = {
    "project": Config,
    "engine": Engine,
    "services.*": Service,
    "edge": Edge,
    "edge.tls": Tls,
    "routes.*": Route,
    "database": Database,
    "timeouts": Timeouts,
    "backup": Backup,
    "watch": Watch,
    "notify": Notify,
    "disk": Disk,
    "registry": Registry,
    "build": Build,
    "swarm": Swarm,
}
RENAMED = {"project.id": (Config, "deployment"), "smoke.paths": (Config, "smoke")}
SIZES = {"min_free", "temp_size"}  # the other text values of numeric fields are durations

# Keys the example shows with a value other than the default, on purpose.
EXAMPLE_VALUES = {
    "edge.public_port": "the demo serves on 8080, beside anything on port 80",
    "services.frontend.stop_grace": "a front end has short requests",
    "services.backend.replicas": "swarm mode's example",
    "edge.temp_size": "shows a size larger than the default",
    "edge.tls.hsts_max_age": "a year, once HTTPS works",
    'routes."/api/ai/".burst': "a limit's example",
    'routes."/ai/".burst': "a limit's example",
    'routes."/ai/".budget_burst': "a budget's example",
    "engine.mode": "shows swarm mode",
    "swarm.edge_replicas": "swarm mode's example",
}
# Keys whose docs describe where the value comes from instead of writing a default.
DESCRIBED = {
    "engine.host": "DOCKER_HOST, else the local engine",
    "services.*.build_args": "BASE_IMAGE is the Dockerfiles' own default (checked below)",
}


def model_field(key: str) -> tuple[type, str] | None:
    """The model class and field of a dotted key ("services.*.port"), or None when the
    model has no field of that name (edge.headers, environments, ...)."""
    if key in RENAMED:
        return RENAMED[key]
    section, _, name = key.rpartition(".")
    if name in ("cpus", "memory") and section in ("services.*", "database"):
        return Limits, name
    cls = MODELS.get(section)
    if cls is None or name not in {f.name for f in dataclasses.fields(cls)}:
        return None
    return cls, name


def default(cls: type, name: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is dataclasses.MISSING or f.default in (None, "", ()):
        return NONE
    return f.default


def as_model(name: str, value: Any, want: Any) -> Any:
    """A value as written in TOML or a doc ("3m", "2g", 2) in the model's terms."""
    if isinstance(want, bool) or not isinstance(want, (int, float)) or not isinstance(value, str):
        return value
    return parse_size(value) if name in SIZES else parse_duration(value)


def generic(section: str) -> str:
    section = re.sub(r'^(services|routes)\.(?:"[^"]*"|<[^>]*>|[^."]+)', r"\1.*", section)
    return section


# -- the annotated example --------------------------------------------------------------
def example_values() -> list[tuple[str, str, Any]]:
    """(the key as written, its generic key, its TOML value) of every assignment the example
    shows, commented out or not, outside [environments.*] and [edge.headers]."""
    found, section = [], ""
    for line in (ROOT / "examples" / "deployer.toml").read_text().splitlines():
        header = re.fullmatch(r"(?:# )?\[([^\]]+)\]\s*", line)
        if header:
            section = header.group(1)
            continue
        m = re.fullmatch(r"(?:# )?([a-z_][a-z0-9_]*) = (.+)", line)
        if not m or section.startswith(("environments.", "edge.headers")):
            continue
        try:
            value = tomllib.loads(f"v = {m.group(2)}")["v"]
        except tomllib.TOMLDecodeError:
            continue  # prose that looks like an assignment
        found.append((f"{section}.{m.group(1)}", f"{generic(section)}.{m.group(1)}", value))
    return found


def example_problems() -> list[str]:
    wrong = []
    for key, general, value in example_values():
        field = model_field(general)
        if field is None:
            wrong.append(f"{key}: no field of the model (add it to MODELS or RENAMED)")
            continue
        want = default(*field)
        if want is not NONE and (as_model(field[1], value, want) == want) == (key in EXAMPLE_VALUES):
            wrong.append(f"{key} = {value!r}, the model's default is {want!r}")
    return wrong


def test_the_example_shows_each_default_as_the_model_has_it():
    assert example_problems() == [], "the example and the model disagree (or EXAMPLE_VALUES is stale)"
    shown = {general for _, general, _ in example_values() if default(*model_field(general)) is not NONE}
    assert len(shown) >= 40
    assert {k for k, _, _ in example_values()} >= set(EXAMPLE_VALUES)


def test_the_example_shows_the_default_headers():
    raw = tomllib.loads((ROOT / "examples" / "deployer.toml").read_text())
    assert tuple(raw["edge"]["headers"].items()) == DEFAULT_HEADERS
    assert f'base_image = "{DEFAULT_BASE_IMAGE}"' in (ROOT / "examples" / "deployer.toml").read_text()


# -- the docs' tables ---------------------------------------------------------------------
def table_rows(path: Path, prefix: str = "") -> list[tuple[list[str], str]]:
    """(the row's keys, its default cell) of each row of the tables with a default column."""
    rows, in_table = [], False
    for line in path.read_text().splitlines():
        if re.fullmatch(r"\| [^|]*key \| default \| meaning \|", line):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        if not in_table or line.startswith("|---"):
            continue
        cells = line.strip("|").split(" | ")
        keys: list[str] = []
        for token in re.findall(r"`([^`]+)`", cells[0]):
            if keys and token.startswith("."):
                token = keys[-1].rpartition(".")[0] + token
            elif keys and "." not in token:
                token = keys[-1].rpartition(".")[0] + "." + token
            elif prefix:
                token = prefix + token
            keys.append(token)
        rows.append(([generic(k.rpartition(".")[0]) + "." + k.rpartition(".")[2] for k in keys], cells[1].strip()))
    return rows


def doc_problems(path: Path, prefix: str = "") -> list[str]:
    problems = []
    for keys, cell in table_rows(path, prefix):
        fields = {k: model_field(k) for k in keys}
        if not any(fields.values()):
            continue  # services.<name>, backup.*: no one field
        items = [cell] if len(keys) == 1 else re.split(r" / |, ", cell)
        if len(items) == 1 < len(keys):
            items = items * len(keys)  # "none" for every key of the row
        if len(items) != len(keys):
            problems.append(f"{path.name}: {', '.join(keys)}: {len(keys)} keys, {len(items)} defaults")
            continue
        for key, item in zip(keys, items, strict=True):
            if not fields[key] or key in DESCRIBED:
                continue  # swarm.*: a table of its own
            want = default(*fields[key])
            written = re.match(r"`([^`]+)`", item)
            if not written:  # "none", "required", a description
                if want is not NONE:
                    problems.append(f"{path.name}: {key}: says {item!r}, the model's default is {want!r}")
                continue
            try:
                value = tomllib.loads(f"v = {written.group(1)}")["v"]
            except tomllib.TOMLDecodeError:
                value = written.group(1)
            if want is NONE or as_model(fields[key][1], value, want) != want:
                problems.append(f"{path.name}: {key}: says {item!r}, the model's default is {want!r}")
    return problems


def test_the_readme_table_shows_the_model_defaults():
    assert doc_problems(ROOT / "README.md") == []
    keys = {k for row, _ in table_rows(ROOT / "README.md") for k in row}
    assert {"watch.min_clients", "edge.preview_port", "disk.min_free", "services.*.stop_grace"} <= keys
    headers = next(cell for row, cell in table_rows(ROOT / "README.md") if row == ["edge.headers.<name>"])
    assert re.findall(r"`([^`]+)`", headers) == [value for _, value in DEFAULT_HEADERS]
    build_args = next(cell for row, cell in table_rows(ROOT / "README.md") if row == ["services.*.build_args"])
    assert DEFAULT_BASE_IMAGE in build_args


def test_the_backup_table_shows_the_model_defaults():
    assert doc_problems(ROOT / "docs" / "database.md", prefix="backup.") == []
    keys = {k for row, _ in table_rows(ROOT / "docs" / "database.md", prefix="backup.") for k in row}
    assert {"backup.keep_last", "backup.keep_monthly", "backup.schedule", "backup.webhook_timeout"} <= keys


def test_a_default_changed_in_the_model_alone_is_found(monkeypatch):
    for cls, name, value in ((Backup, "keep_weekly", 5), (Edge, "upstream_keepalive", 256)):
        monkeypatch.setattr(next(f for f in dataclasses.fields(cls) if f.name == name), "default", value)
    assert sorted(p.split(" ")[0] for p in example_problems()) == ["backup.keep_weekly", "edge.upstream_keepalive"]
    assert [p.split(" ")[1] for p in doc_problems(ROOT / "README.md")] == ["edge.upstream_keepalive:"]
    assert [p.split(" ")[1] for p in doc_problems(ROOT / "docs" / "database.md", "backup.")] == ["backup.keep_weekly:"]


# -- the readers ----------------------------------------------------------------------------
MINIMAL = """
[project]
name = "shop"
[services.web]
image = "shop-web"
port = 3000
health = "/healthz"
routes = ["/"]
[database]
env_file = "db.env"
[routes."/api/"]
rate_limit = "5r/s"
[edge.tls]
cert = "cert.pem"
key = "key.pem"
"""


def test_a_config_that_sets_nothing_gets_the_model_defaults(tmp_path):
    cfg = parse(tomllib.loads(MINIMAL), tmp_path / "deployer.toml", check_paths=False)
    assert cfg.edge == Edge(tls=cfg.edge.tls, routes=cfg.edge.routes)
    assert cfg.edge.tls == Tls(cert=tmp_path / "cert.pem", key=tmp_path / "key.pem")
    assert cfg.edge.routes == (Route(prefix="/api/", rate_limit="5r/s"),)
    assert cfg.services["web"] == Service(name="web", image="shop-web", port=3000, health="/healthz", routes=("/",))
    assert cfg.database == Database(env_file=tmp_path / "db.env")
    assert (cfg.timeouts, cfg.backup, cfg.engine, cfg.watch, cfg.notify, cfg.disk) == (
        Timeouts(),
        Backup(),
        Engine(),
        Watch(),
        Notify(),
        Disk(),
    )
    assert (cfg.restart, cfg.base_image) == (Config.restart, Config.base_image)
