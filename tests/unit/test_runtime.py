"""The runtime a command gets follows engine.mode, and both runtimes answer the whole interface."""

from __future__ import annotations

import inspect

import pytest
from test_stack import swarm_config

from deployer.adapters.edge import Edge
from deployer.adapters.swarm import SwarmEdge
from deployer.runtime.base import Runtime
from deployer.runtime.compose import ComposeRuntime
from deployer.runtime.mode import context
from deployer.runtime.swarm import SwarmRuntime

METHODS = sorted(name for name, _ in inspect.getmembers(Runtime, inspect.isfunction) if not name.startswith("_"))


def test_the_mode_picks_the_runtime_and_its_edge(shop, make_config):
    one_host, cluster = context(shop), context(swarm_config(make_config))
    assert type(one_host.runtime) is ComposeRuntime and type(one_host.edge) is Edge
    assert type(cluster.runtime) is SwarmRuntime and type(cluster.edge) is SwarmEdge


@pytest.mark.parametrize("runtime", [ComposeRuntime, SwarmRuntime])
def test_each_runtime_answers_every_call_of_the_interface_alike(runtime):
    assert len(METHODS) >= 15
    for name in METHODS:
        wanted = inspect.signature(getattr(Runtime, name)).parameters
        have = inspect.signature(getattr(runtime, name)).parameters
        assert [(p.name, p.kind, p.default) for p in have.values()] == [
            (p.name, p.kind, p.default) for p in wanted.values()
        ], name
