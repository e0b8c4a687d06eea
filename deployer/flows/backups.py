"""Backups, from the CLI's side: every command asks the backup agent, which runs in the
`backup` container next to the database (deployer/agent), through the engine's one exec
path. Nothing here reads the dumps folder, so each command works the same against a
remote engine; `fetch` streams a dump to this machine, and `verify --restore` restores
one into a scratch server on the engine (flows/scratch.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from deployer.adapters import progress
from deployer.core import dumps, dumpstate
from deployer.core.masking import mask
from deployer.core.steps import Step
from deployer.errors import BackupError, Cancelled, DeployerError, InputError
from deployer.flows.agent_call import AGENT, _Reply, ask, refuse_a_running_restore, running
from deployer.flows.context import Context


def notify(ctx: Context, step: str, error: str) -> None:
    """POST a failed dump that the agent did not report itself: it was not running, it ended
    without an answer, or the webhook did not take its POST (unreachable from its container,
    or an error answer)."""
    url = ctx.config.backup.webhook
    if not url:
        return
    import urllib.request

    body = json.dumps(dumps.failure_event(ctx.config.name, step, error))
    request = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=ctx.config.backup.webhook_timeout) as response:
            response.read(1024)
    except Exception as exc:  # never hide the failure being reported; never print the URL
        ctx.say(f"webhook failed: {type(exc).__name__}")


# -- commands -------------------------------------------------------------------------------
def _reachable(ctx: Context, step: str) -> None:
    """The backup service runs; otherwise the failure is reported to the webhook, and raised."""
    try:
        running(ctx, step)
    except BackupError as exc:
        notify(ctx, step, str(exc))
        raise


def take(ctx: Context, *, label: str, step: str = Step.BACKUP, verify: bool = True) -> str:
    """Dump the configured database (and read it all back); returns the dump's name.
    A failure (a refused dump too) leaves no dump, and is reported to the webhook: by the
    agent, or from here when the agent did not get it there."""
    args = ["dump", "--label", label, "--step", str(step)] + ([] if verify else ["--no-verify"])
    try:
        row = ask(ctx, *args, step=step, progress=f"dump of {ctx.config.database.name}")
        note(ctx, row, step=step)
        return row["name"]
    except (InputError, Cancelled):  # bad input, or the user's own cancel: nothing to report
        raise
    except DeployerError as exc:
        notified = getattr(exc, "notified", None)
        if notified is not True:
            if notified is False:
                ctx.say("the backup agent could not deliver the failure to the webhook: sending it from here")
            notify(ctx, exc.step or str(step), str(exc))
        raise


def now(ctx: Context, *, label: str, verify: bool = True) -> str:
    """`deployer backup now`: a dump under the release lock (when an edge runs to hold it), so
    that no release, restore or `down` changes the database or the dumps while it is taken."""
    from deployer.flows.lock import held

    _reachable(ctx, Step.BACKUP)  # before `up`: one line, and no lock taken
    with held(ctx, "backup now"):
        refuse_a_running_restore(ctx, Step.BACKUP)
        return take(ctx, label=label, verify=verify)


def listing(ctx: Context) -> dict[str, Any]:
    """{"database", "dumps": [row, ...] oldest first, damaged ones included, "writing": [...]}"""
    return ask(ctx, "list", step=Step.LIST)


def drill(ctx: Context) -> dict[str, Any]:
    """`deployer backup drill`: the schedule's restore drill, now (deployer/agent/drill.py)."""
    return ask(ctx, "drill", step=Step.DRILL)


def verify(ctx: Context, name: str | None, *, restore: bool) -> tuple[str, list[str]]:
    """The agent's full check; with restore, also a restore into a scratch server."""
    done = ask(ctx, "verify", *([name] if name else []), step=Step.VERIFY)
    name, report = done["name"], list(done["report"])
    note(ctx, done.get("dump"), step=Step.VERIFY)
    if restore:
        from deployer.flows import scratch

        try:
            report += scratch.restore_check(ctx, name, agent=running(ctx, Step.VERIFY), step=Step.VERIFY)
        except scratch.RestoreFailed as exc:  # only the dump's own failure marks it
            _record(ctx, name, ok=False, detail=str(exc))
            raise
        _record(ctx, name, ok=True, detail="")
    return name, report


def note(ctx: Context, row: Any, *, step: str) -> None:
    """A dump the CLI took or checked, on the status page's list of the last ones (the edge's
    volume: lua/deployer/page.lua). Best effort: without an edge (before `up`) there is no
    page, and the dumps folder stays the record."""
    from deployer.core.history import dump_note

    if isinstance(row, dict) and row.get("name"):
        try:
            ctx.edge.note_dump(dump_note(row), step=step)
        except DeployerError:
            pass


def _record(ctx: Context, name: str, *, ok: bool, detail: str) -> None:
    args = ["--kind", "restore", "--ok" if ok else "--failed", "--detail", mask(detail)[-300:]]
    note(ctx, ask(ctx, "record", name, *args, step=Step.VERIFY), step=Step.VERIFY)


def fetch(ctx: Context, name: str, output: Path | None) -> tuple[Path, str]:
    """Copy a dump to this machine: partial file, sha256 checked, fsync, rename, 0600."""
    dumps.check_name(name)
    target = output or Path.cwd()
    try:
        if target.is_dir():
            target = target / f"{name}{dumps.DUMP}"
        if target.exists():
            raise InputError(f"--output: {target} exists; remove it or choose another path")
        if not target.parent.is_dir():
            raise InputError(f"--output: the folder {target.parent} does not exist")
        os.stat(target.parent / f".{target.name}.partial")  # a name the folder cannot hold fails here, not later
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InputError(f"--output: cannot write {str(target)[:120]!r}: {exc.strerror}") from None
    info = ask(ctx, "info", name, step=Step.FETCH)
    if info["state"] == dumpstate.DAMAGED:
        raise BackupError(f"{name} is damaged: {info['problem']}", step=Step.FETCH)
    if not info.get("sha256"):  # its metadata is missing: `verify` writes it again
        raise BackupError(f"{name} cannot be fetched yet: {info['problem']}", step=Step.FETCH)
    agent = running(ctx, Step.FETCH)
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"--output: {partial} exists (another fetch, or a killed one: remove it)") from None
    except OSError as exc:
        raise BackupError(f"cannot write {partial}: {exc.strerror}", step=Step.FETCH) from None
    try:
        with os.fdopen(fd, "wb") as fh, progress.TRANSFER[0](f"fetch {name}") as update:
            got = [0]

            def sink(chunk: bytes) -> None:
                fh.write(chunk)
                digest.update(chunk)
                got[0] += len(chunk)
                update(got[0], info.get("size") or None)

            done = ctx.engine.exec_stream(agent, [*AGENT, "fetch", name], sink, step=Step.FETCH)
            if done.exit_code != 0:
                reply = _Reply(ctx.say)
                for line in done.stderr.splitlines():
                    reply.line(line.encode())
                reply.outcome(1, done.stderr, Step.FETCH)
            if digest.hexdigest() != info["sha256"]:
                raise BackupError(
                    f"{name}: the copy's sha256 {digest.hexdigest()[:12]}… is not the recorded {info['sha256'][:12]}…; nothing kept",
                    step=Step.FETCH,
                )
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(partial, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror}", step=Step.FETCH) from None
    finally:
        partial.unlink(missing_ok=True)
    sidecar = target.with_name(target.name + ".sha256")
    if not sidecar.exists():
        sidecar.write_text(f"{info['sha256']}  {target.name}\n", encoding="utf-8")
    return target, info["sha256"]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore(ctx: Context, name: str, database: str | None) -> dict[str, Any]:
    """Restore a dump into the database (the configured one by default), holding the release
    lock: a safety dump of the target first, then all or nothing."""
    dumps.check_name(name)
    database = database or ctx.config.database.name
    from deployer.flows.scratch import shm_bytes

    memory = dumps.restore_memory(shm_bytes(ctx))
    from deployer.flows import oneoffs
    from deployer.flows.lock import held

    without = "warning: the edge is not running, so no release can run either: restoring without the release lock"
    with held(ctx, f"backup restore {name}", say_without=without):
        oneoffs.clear(ctx)  # never restore under a migration a killed release left running
        refuse_a_running_restore(ctx, Step.RESTORE)  # nor beside a restore a killed one left
        args = ["restore", name, "--database", database, "--maintenance-work-mem", memory]
        return ask(ctx, *args, step=Step.RESTORE, progress=f"restore of {name} into {database}")


def prune(ctx: Context, *, dry_run: bool, damaged: bool = False) -> dict[str, Any]:
    """Apply the retention policy (deleting dumps holds the release lock, so a release's
    pre-release dump is never pruned while it is taken)."""
    args = ["prune"] + (["--dry-run"] if dry_run else []) + (["--damaged"] if damaged else [])
    if dry_run:
        return ask(ctx, *args, step=Step.PRUNE)
    from deployer.flows.lock import held

    with held(ctx, "backup prune"):
        return ask(ctx, *args, step=Step.PRUNE)


def summary(ctx: Context) -> dict[str, Any] | None:
    """For `deployer status`: the newest dump of the configured database (name, created, age,
    size, its state now), the newest good one, the next scheduled run, the deadline, the
    schedule's health (overdue, and why), the last error, and the dumps that lost their
    metadata. None when the backup service is not running (status shows that)."""
    try:
        status = ask(ctx, "status", step=Step.STATUS)
    except DeployerError:
        return None
    newest = status.get("newest") or {}
    good = status.get("newest_good") or {}
    return {
        "name": newest.get("name"),
        "created": newest.get("created"),
        "age": newest.get("age"),
        "size": newest.get("size"),
        "size_text": newest.get("size_text"),
        "label": newest.get("label"),
        "state": newest.get("state"),
        "ok": bool(newest.get("ok")),
        "verified": newest.get("verified"),
        "newest_good": {"name": good.get("name"), "age": good.get("age"), "verified": good.get("verified")}
        if good
        else None,
        "damaged": status.get("damaged", []),
        "without_metadata": status.get("without_metadata", []),
        "schedule": status.get("schedule"),
        "next_run": status.get("next_run"),
        "deadline": status.get("deadline"),
        "overdue": status.get("overdue"),
        "health": status.get("health"),
        "last_run": status.get("last_run"),
        "last_error": status.get("last_error"),
        "last_drill": status.get("last_drill"),
        "drill_schedule": status.get("drill_schedule"),
    }
