"""`deployer maintenance on [--message ...] [--retry-after N] | off`: the public route
answers a 503 page with Retry-After, for the rare change that cannot be made online.

One route state file (core/maintenance.py), written by one atomic rename and announced on
the edge's control socket: no reload, so no client loses its connection. The preview route
and the deployer's own probes are untouched, so a release (with its migration) can run and
be checked on the preview before `off` reopens. It takes no release lock: like a switch,
it must work while a release runs.
"""

from __future__ import annotations

from deployer.core import history, scripts
from deployer.core.maintenance import DEFAULT_MESSAGE, Maintenance, check_message, check_retry_after
from deployer.core.steps import Step
from deployer.errors import EdgeError
from deployer.flows import notify
from deployer.flows.context import Context, now_text, who


def on(ctx: Context, message: str | None, retry_after: int) -> Maintenance:
    text = check_message(message) if message is not None else DEFAULT_MESSAGE
    check_retry_after(retry_after)
    _ready(ctx)
    page = Maintenance(text, retry_after, now_text(), who())
    _write(ctx, page.render())
    _record(ctx, "on", message=text, retry_after=retry_after)
    notify.send(ctx, "maintenance_on", f"maintenance on: the public route answers 503 ({text})", message=text)
    return page


def off(ctx: Context) -> bool:
    """False when maintenance was off already."""
    _ready(ctx)
    was = ctx.edge.state(step=Step.MAINTENANCE).maintenance is not None
    _write(ctx, None)
    if was:
        _record(ctx, "off")
        notify.send(ctx, "maintenance_off", "maintenance off: the public route serves the live colour again")
    return was


def current(ctx: Context) -> Maintenance | None:
    ctx.edge.require()
    return Maintenance.parse(ctx.edge.state(step=Step.MAINTENANCE).maintenance)


def _ready(ctx: Context) -> None:
    from deployer.flows.infra import check_owner

    ctx.edge.require()
    check_owner(ctx)


def _write(ctx: Context, content: str | None) -> None:
    result = ctx.edge.run(scripts.write_state("maintenance", content), step=Step.MAINTENANCE)
    if not result.ok:
        raise EdgeError(
            f"could not write the maintenance state: {(result.stdout + result.stderr).strip()}", step=Step.MAINTENANCE
        )


def _record(ctx: Context, state: str, **fields) -> None:
    ctx.edge.append_history(
        history.entry("maintenance", when=now_text(), by=who(), outcome=history.OK, state=state, **fields),
        step=Step.MAINTENANCE,
    )
