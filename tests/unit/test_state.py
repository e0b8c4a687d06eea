"""The route state: written by core.state, read back the same, and judged from the edge's truth."""

from __future__ import annotations

import dataclasses

import pytest

from deployer.core.state import EdgeState, Record, Target, dump_files, parse_dump, record_for


def test_a_record_renders_and_parses_back(shop):
    rec = record_for(shop, "green", "1a2b3c4d", "v1.2")
    assert rec.render().splitlines() == [
        "release 1a2b3c4d",
        "version v1.2",
        "service backend backend-green-1a2b3c4d 8080 /health",
        "service frontend frontend-green-1a2b3c4d 3000 /healthz",
        "service worker worker-green-1a2b3c4d 9000 /ready",
        "route /api/ backend",
        "route / frontend",
    ]
    assert Record.parse("green", rec.render()) == rec
    assert rec.services == ["backend", "frontend", "worker"]


def test_a_cap_of_requests_in_flight_is_part_of_the_release(shop):
    frontend = dataclasses.replace(shop.services["frontend"], max_in_flight=64)
    capped = dataclasses.replace(shop, services={**shop.services, "frontend": frontend})
    rec = record_for(capped, "blue", "1a2b3c4d", "v1")
    assert rec.render().splitlines()[-1] == "inflight frontend 64"
    assert Record.parse("blue", rec.render()) == rec
    assert Record.parse("blue", rec.render().replace("inflight frontend 64", "inflight frontend lots")).inflight == ()


def test_a_value_with_a_space_cannot_reach_the_file():
    rec = Record("blue", "1a2b3c4d", "v1", (Target("api", "api-blue-1a2b3c4d", 80, "/h x"),))
    with pytest.raises(ValueError):
        rec.render()


def test_garbage_is_no_record():
    assert Record.parse("blue", "") is None
    assert Record.parse("blue", "release nothex!\nversion v1\n") is None


def test_preview_is_the_colour_that_is_not_live(shop):
    blue = record_for(shop, "blue", "aaaaaaaa", "v1")
    green = record_for(shop, "green", "bbbbbbbb", "v2")
    first = EdgeState(live="", records={"blue": blue, "green": None})
    assert first.preview == "blue" and first.live_record is None
    both = EdgeState(live="green", records={"blue": blue, "green": green})
    assert both.preview == "blue"
    assert (
        both.serves("green", "bbbbbbbb")
        and not both.serves("green", "cccccccc")
        and not both.serves("blue", "aaaaaaaa")
    )


def test_live_without_a_record_is_no_live(shop):
    state = EdgeState.parse(
        {"live": "green\n", "blue": record_for(shop, "blue", "aaaaaaaa", "v1").render(), "green": None}
    )
    assert state.live == "" and state.preview == "blue"


def test_the_dump_of_the_files_parses_back(shop):
    sep = "@@x@@"
    blue = record_for(shop, "blue", "aaaaaaaa", "v1").render()
    text = f"{sep} live\nblue\n{sep} blue\n{blue}{sep} green\n{sep} missing\n{sep} maintenance\n{sep} missing\n"
    files = parse_dump(text, sep)
    assert (
        files["live"] == "blue\n" and files["blue"] == blue and files["green"] is None and files["maintenance"] is None
    )
    state = EdgeState.parse(files)
    assert state.live == "blue" and state.record("blue").version == "v1" and state.maintenance is None
    assert "cat /var/lib/deployer/state/live" in dump_files(sep)


def test_strip_prefix_reaches_the_route_state_and_reads_back(make_config):
    from conftest import TWO

    from deployer.core.state import record_for

    config = make_config(TWO.replace('routes = ["/api/"]', 'routes = ["/api/"]\nstrip_prefix = true'))
    record = record_for(config, "blue", "1a2b3c4d", "v1")
    assert record.strip == ("backend",) and "strip backend\n" in record.render()
    assert Record.parse("blue", record.render()) == record
    # the default smoke checks ask for the backend's health path as a client does: under /api
    assert config.verify_paths() == ["/api/health", "/healthz"] and config.warnings == ()
