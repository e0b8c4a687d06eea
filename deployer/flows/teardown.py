"""What `deployer down` does under its lock on either runtime (flows/infra.py on one host,
runtime/swarm_infra.py on a swarm), before the edge, the database and the networks go."""

from __future__ import annotations

from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.flows import agent_call, backups
from deployer.flows.context import Context
from deployer.flows.oneoffs import clear
from deployer.flows.runner import harness_pause


def teardown(ctx: Context, lease, *, final_dump: bool) -> None:
    """`down` under its lock, on one host and on a swarm alike, before the edge and the
    database go: refused (exit 1) while a restore a killed command left runs; the final
    verified dump; every release and one-off gone; the lease closed in the edge, so no
    command can take the lock before the edge itself is removed (flows/lock.py)."""
    agent_call.refuse_a_running_restore(ctx, Step.DOWN)
    if final_dump:
        dump = backups.take(ctx, label="final, before down", step=Step.DOWN)
        ctx.say(f"final dump before the database volume goes: {dump}")
    ctx.runtime.retire(EdgeState())  # an empty route state names no release: all go
    clear(ctx, stop_all=True)  # one-offs: a running migration is waited for, the rest stopped
    if lease is not None:
        lease.close(step=Step.DOWN)
    harness_pause(Step.DOWN, ctx.say)
