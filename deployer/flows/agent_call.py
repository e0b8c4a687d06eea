"""The backup agent's channel, from the CLI's side: one agent command runs through the
engine's one exec path in the `backup` container next to the database (deployer/agent),
its progress lines go to `say` and its last JSON line is the answer; Ctrl-C cancels it
there, and a restore that a killed command left running there holds off every command
that would run under it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from deployer.adapters import oneoff
from deployer.core.masking import mask
from deployer.errors import BackupError, EngineError, InputError, LockError
from deployer.flows.context import Context

AGENT = ["python3", "-m", "deployer.agent"]


def container(ctx: Context) -> str:
    return ctx.runtime.agent_container()  # on a swarm, the agent's task container on this engine's node


class _Reply:
    """The agent's JSON lines: progress goes to `say`, the last line is the answer."""

    def __init__(self, say, update=lambda done, total: None) -> None:
        self.say = say
        self.update = update  # bytes a dump wrote or a restore read (adapters/progress.py TRANSFER)
        self.pid: int | None = None
        self.result: Any = None
        self.error: dict[str, Any] | None = None
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.line(line)

    def line(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if "pid" in message:
            self.pid = message["pid"]
        elif "say" in message:
            self.say(str(message["say"]))
        elif "bytes" in message and isinstance(message["bytes"], int):
            self.update(message["bytes"], message.get("of") if isinstance(message.get("of"), int) else None)
        elif "result" in message:
            self.result = message["result"]
        elif "error" in message:
            self.error = message

    def outcome(self, exit_code: int, stderr: str, step: str) -> Any:
        if self._buffer.strip():
            self.line(self._buffer)
        if self.error is not None:
            kind = InputError if self.error.get("input") else BackupError
            exc = kind(mask(str(self.error.get("error"))))
            exc.step = self.error.get("step") or step
            exc.notified = self.error.get("notified")  # did the agent's webhook POST go through
            raise exc
        if exit_code != 0 or self.result is None:
            tail = mask(stderr.strip()[-500:]) or "no message"
            raise BackupError(f"the backup agent ended without an answer (exit {exit_code}): {tail}", step=step)
        return self.result


def running(ctx: Context, step: str) -> str:
    """The backup container's name; raises when it is not running."""
    name = container(ctx)
    found = ctx.engine.container(name)
    if found is None or not found.running:
        state = "does not exist" if found is None else f"is {found.status}"
        raise BackupError(f"the backup service {name} {state} on {ctx.engine.where} (run `deployer up`)", step=step)
    return name


def healthy(ctx: Context, step: str) -> None:
    """The backup service's health, asked once now: its container's own check asks every 5 s
    (a Python start each time, so not more often), and `up` need not wait for the first.
    Raises, as that check's failure would, when the service is down or its dumps overdue."""
    name = running(ctx, step)
    result = ctx.engine.exec(name, [*AGENT, "health"], step=step)
    if not result.ok:
        said = mask((result.stdout + result.stderr).strip()[-500:]) or f"exit {result.exit_code}"
        raise BackupError(f"the backup service {name} is not healthy: {said}", step=step)


def ask(ctx: Context, *args: str, step: str, progress: str = "") -> Any:
    """Run one agent command and return its answer; its errors become ours. `progress`: the
    title of the bytes a dump or a restore reports as it goes (shown as a transfer's are)."""
    name = running(ctx, step)
    pause = {k: v for k, v in os.environ.items() if k == "DEPLOYER_TEST_PAUSE"}  # test hook: agent/commands.py
    if progress:
        from deployer.adapters.progress import TRANSFER

        with TRANSFER[0](progress) as update:
            return _ask(ctx, name, args, step, _Reply(ctx.say, update), pause)
    return _ask(ctx, name, args, step, _Reply(ctx.say), pause)


def _ask(ctx: Context, name: str, args: tuple[str, ...], step: str, reply: _Reply, pause: dict[str, str]) -> Any:
    try:
        done = ctx.engine.exec_stream(name, [*AGENT, *args], reply.feed, step=step, env=pause)
    except KeyboardInterrupt:
        if reply.pid:  # the agent would finish on its own: stop it, it removes what it wrote
            try:
                ctx.engine.exec(name, [*AGENT, "cancel", str(reply.pid)], step=step)
            except Exception:
                pass
        raise
    return reply.outcome(done.exit_code, done.stderr, step)


def refuse_a_running_restore(ctx: Context, step: str) -> None:
    """Refuse (exit 1) beside a restore that a killed `backup restore` left running (the caller
    holds the lock, so no live command owns it): it still replaces the database's objects."""
    try:
        execs = oneoff.running_execs(ctx.engine, container(ctx))
    except EngineError:
        return  # no backup service to ask: nothing can restore either
    for argv in execs:
        if argv[:3] == AGENT and len(argv) > 4 and argv[3] == "restore":
            raise LockError(
                f"a restore of {argv[4]} still runs in the backup service ({container(ctx)}), left by a "
                "`deployer backup restore` that was killed: wait until it ends (`deployer backup list` shows "
                "its safety dump when it began), then run this again; nothing was changed",
                step=step,
            )
