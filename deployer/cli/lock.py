"""`deployer lock status|release`."""

from __future__ import annotations

from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled, say
from deployer.core.steps import Step

app = typer.Typer(no_args_is_help=True, help="Inspect or break the release lock.")


@app.command("status")
@handled
def status(config: ConfigOption = None, env: EnvOption = None) -> None:
    """Show who holds the lock and how long its lease runs."""
    from deployer.core.lockrecord import describe

    with context(config, env, check_paths=False) as ctx:
        ctx.edge.require()
        held = ctx.edge.read_lock()
    if held is None:
        print("free")
        return
    left, record = held
    state = f"lease runs {left}s more" if left >= 0 else f"STALE: its lease passed {-left}s ago (the holder was killed)"
    print(f"held by {describe(record)}; {state}")


@app.command("release")
@handled
def release(
    config: ConfigOption = None,
    env: EnvOption = None,
    force: Annotated[bool, typer.Option("--force", help="Break it even while its holder's lease runs.")] = False,
) -> None:
    """Break the lock: one left by a killed process (its lease has passed), or any with --force.
    A release its holder left unfinished is undone: its colour gets its previous release back."""
    from deployer.core.lockrecord import describe
    from deployer.errors import LockError

    with context(config, env, check_paths=False) as ctx:
        ctx.edge.require()
        held = ctx.edge.read_lock()
        if held is None:
            print("the lock was free")
            if ctx.edge.state().pending:
                from deployer.flows.lock import Lease

                Lease(ctx, "lock release").free()
            return
        left, record = held
        if left >= 0 and not force:
            raise LockError(
                f"the lock is live: held by {describe(record)}, lease runs {left}s more; "
                "wait for it, or break it with --force if you are sure its holder is gone",
                step=Step.LOCK,
            )
        ctx.edge.break_lock()
        say(f"lock broken; it was held by {describe(record)}")
        from deployer.flows.lock import Lease

        Lease(ctx, "lock release").free()  # undoes the release its holder left unfinished, if any
