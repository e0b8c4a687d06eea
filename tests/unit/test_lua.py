"""The edge's Lua (deployer/assets/edge/lua) under a real LuaJIT: busted runs the specs of tests/lua.

The specs stub OpenResty's `ngx` API with an in-memory fake (tests/lua/fake_nginx.lua), so they
check the modules' own decisions (route state, routing, balancing, counting, the views) in a
second; what nginx itself does is the integration tests' part. They run in a throwaway container
of the image tests/lua/Dockerfile (Debian's luajit and lua-busted), with the specs and the Lua
mounted read-only and no network. `make test-lua` runs this module alone.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from deployer.core.state import Record, Target

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "lua"
LUA = ROOT / "deployer" / "assets" / "edge" / "lua"
RUN_TIMEOUT = 120  # seconds; the specs take about one


@pytest.mark.docker
def test_the_edges_lua_passes_its_specs(docker_client, lua_image):
    container = docker_client.containers.run(
        lua_image,
        ["luajit", "/usr/bin/busted", "--output=plainTerminal"],
        name=f"t{uuid.uuid4().hex[:8]}-lua",
        working_dir="/spec",
        network_mode="none",
        volumes={
            str(SPECS): {"bind": "/spec", "mode": "ro"},
            str(LUA): {"bind": "/etc/nginx/deployer/lua", "mode": "ro"},  # nginx.conf's lua_package_path
        },
        detach=True,
    )
    try:
        status = container.wait(timeout=RUN_TIMEOUT)["StatusCode"]
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status == 0, f"busted exited {status}:\n{output}"
    passed = re.search(r"(\d+) success", output)
    assert passed and int(passed.group(1)) > 0, f"busted ran no spec:\n{output}"


def test_the_lua_specs_read_the_route_state_as_core_writes_it():
    """tests/lua/fixtures/green is what core/state.py writes for this record, byte for byte."""
    record = Record(
        "green",
        "5e6f7a8b",
        "v2.0-rc.1",
        (
            Target("api", "api-green-5e6f7a8b", 8080, "/actuator/health?group=readiness"),
            Target("web", "web-green-5e6f7a8b", 3000, "/"),
        ),
        (("/api/", "api"), ("/", "web"), ("/api/v2/", "api")),
        (("web", 50),),
        ("api",),
    )
    assert record.render() == (SPECS / "fixtures" / "green").read_text()
