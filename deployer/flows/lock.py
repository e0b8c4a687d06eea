"""The release lock, held for the length of a command: taken in one exec together with the
route state, its lease renewed in the background, freed at the end (unless the final
commit already freed it, which it does in the same exec as the switch)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from deployer.core import lockrecord
from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.flows.context import Context, who


def _clock() -> float:
    """Seconds that also run while the machine sleeps (a suspended laptop), where Linux has such a clock."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def lease_seconds() -> int:
    """The lease of a lock; DEPLOYER_TEST_LEASE (a test harness hook) shortens it."""
    return int(os.environ.get("DEPLOYER_TEST_LEASE") or lockrecord.LEASE)


def holder(command: str) -> lockrecord.Holder:
    """This command's lock record; its token is 32 random hex digits (as a uuid4's, without
    importing uuid, which imports platform: a switch's 2 ms)."""
    user, _, host = who().partition("@")
    return lockrecord.Holder(
        user, host or socket.gethostname(), os.getpid(), command, time.time(), os.urandom(16).hex()
    )


class Lease:
    """A held lock. `state` is the route state read when it was taken.

    A release whose process was killed leaves a pending mark in the route state; whoever
    takes the lock next finds it, and undoes that release (unless it had gone live) before
    doing anything else."""

    def __init__(self, ctx: Context, command: str) -> None:
        self.edge = edge = ctx.edge
        self.say = ctx.say
        self.holder = holder(command)
        self.lease = lease_seconds()
        taken = edge.take_lock(self.holder, self.lease)
        edge.token = self.holder.token  # from now on, route state writes check that the lock is still ours
        self.state: EdgeState = taken.state
        if taken.stale:
            ctx.say(
                f"warning: took over a stale lock (its holder's lease had passed): {lockrecord.describe(taken.stale)}"
            )
        self.freed = False
        self.closed = False  # `down`: held until the edge is gone (close)
        self.lost = False
        self.confirmed = _clock()  # when the edge last said the lock is ours
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lock-lease", daemon=True)
        self._thread.start()
        if self.state.pending:
            self._recover(ctx)

    def _recover(self, ctx: Context) -> None:
        from deployer.flows.cleanup import settle

        p = self.state.pending
        assert p is not None
        outcome = settle(ctx, p.colour, p.release, p.previous)
        if outcome == "removed":
            ctx.say(
                f"an unfinished release of {p.version} to {p.colour} ({p.release}) was undone: "
                f"{p.colour} is back to {p.previous.version if p.previous else 'no release'}"
            )
        self.state = self.edge.state(step=Step.LOCK)

    @property
    def token(self) -> str:
        return self.holder.token

    def _renew(self) -> None:
        while not self._stop.wait(max(1, self.lease // 3)):
            try:
                if not self.edge.renew_lock(self.token, self.lease):
                    self.lost = True
                    return
                self.confirmed = _clock()
            except Exception:  # the next renewal tries again; the lease covers three of them
                continue

    def check(self) -> None:
        """LockError when the lease was lost: this command stalled past it (a paused process,
        a suspended machine) and another one may have taken the lock over. Nothing more may
        be changed; the undo reads the host's truth.

        After a stall the renewal thread may not have run yet, so a confirmation older than a
        renewal's interval is asked for again here, before the step goes on."""
        if self.freed:  # the switch's commit freed it: what runs after (watch, retire) holds no lock
            return
        if not self.lost and _clock() - self.confirmed > max(1, self.lease // 3) + 2:
            if self.edge.renew_lock(self.token, self.lease):
                self.confirmed = _clock()
            else:
                self.lost = True
        if self.lost:
            from deployer.errors import LockError

            raise LockError(
                "this command's lock was lost (it stalled past its lease, and another command may have taken "
                "the lock over): stopping here"
            )

    def committed(self) -> None:
        """The final commit freed the lock in the edge."""
        self.freed = True
        self.edge.token = ""
        self.stop()

    def close(self, *, step: str) -> None:
        """The end of `down`, before it removes the edge: the lock stays held until the edge
        is gone, and is free in the next edge (core/scripts.py). Freeing it afterwards is
        tried quietly: the edge, and the lock with it, is gone."""
        self.edge.close_lock(self.token, step=step)
        self.closed = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def free(self) -> None:
        """Free the lock. Called from `finally`, so it never raises: a failure here (often the
        same broken edge or connection that failed the command) must not replace the
        command's own error or turn a cancel into a failure; the lease runs out instead."""
        self.stop()
        if not self.freed:
            self.freed = True
            self.edge.token = ""
            try:
                self.edge.free_lock(self.token)
            except Exception as exc:
                if self.closed:  # the edge is gone with the lock (the end of `down`)
                    return
                self.say(
                    f"warning: could not free the lock ({type(exc).__name__}: {exc}); its lease runs out "
                    f"within {self.lease}s, or `deployer lock release` frees it now"
                )


@contextmanager
def held(ctx: Context, command: str, *, say_without: str = "") -> Iterator[Lease | None]:
    """Hold the lock for a command that changes state, when there is an edge to hold it in
    (before the first `up` there is none, and nothing can race). `say_without` is said when
    there is no running edge."""
    edge = ctx.engine.container(ctx.edge.container)
    lease = Lease(ctx, command) if edge is not None and edge.running else None
    if lease is None and say_without:
        ctx.say(say_without)
    try:
        yield lease
    finally:
        if lease is not None:
            lease.free()
