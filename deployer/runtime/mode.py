"""The one place that reads `engine.mode`: it picks the runtime, and hands a command its
Context carrying it (flows/context.py)."""

from __future__ import annotations

from collections.abc import Callable

from deployer.config import Config
from deployer.flows.context import Context
from deployer.runtime.base import Runtime


def pick(ctx: Context) -> Runtime:
    """The runtime of the Context's config."""
    if ctx.config.swarm:
        from deployer.runtime.swarm import SwarmRuntime

        return SwarmRuntime(ctx)
    from deployer.runtime.compose import ComposeRuntime

    return ComposeRuntime(ctx)


def context(config: Config, say: Callable[[str], None] | None = None) -> Context:
    """A command's Context, with the runtime of its config."""
    ctx = Context(config) if say is None else Context(config, say=say)
    ctx.runtime = pick(ctx)
    return ctx
