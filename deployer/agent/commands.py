"""The agent's command line. The container runs `schedule`, its healthcheck runs `health`,
and the deployer CLI runs the rest through `docker exec` (flows/backups.py).

    schedule                        the schedule loop (PID 1)
    health                          exit 0 healthy, 1 overdue (the container's healthcheck)
    status                          newest dump, next run, deadline, last error
    list                            every dump, damaged ones included
    info NAME                       one dump, judged cheaply (sha256 included)
    dump [--label L] [--step S] [--database D] [--no-verify] [--lock-wait-timeout SECONDS]
    verify [NAME]                   sha256 + every data block (default: the newest dump)
    record NAME --kind restore (--ok | --failed) [--detail TEXT]
                                    record a full check made elsewhere (a scratch restore)
    prune [--dry-run] [--damaged]
    fetch NAME                      the dump's bytes on stdout
    restore NAME --database D [--maintenance-work-mem 512MB]
    drill                           restore the newest dump into a scratch server and check it
    base --type full|diff|incr [--repo N]   a pgBackRest base backup ([backup] pitr)
    server [--step S]               the database's server: where, version, pgvector
    cancel PID                      stop another agent command of this container (SIGTERM)

Output: stdout carries JSON lines: {"pid": n} first, {"say": text} progress, {"beat": n}
every 10 s while it works, and last {"result": ...} or {"error": text, "step": s,
"input": bool, "notified": bool | null}. A failed `dump` or `drill` (whatever failed: the
free-space check, the database, the disk, a bug) is POSTed to the webhook and recorded for
`status`; `notified` says whether the webhook took it (null: no webhook, or neither). `fetch`
writes the dump on stdout and its JSON lines on stderr.
Exit codes: 0 done, 1 failed, 2 bad input, 130 stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import asdict
from typing import Any, TextIO

from deployer.agent import boot, health, report
from deployer.agent.boot import Agent
from deployer.core import dumps, dumpstate
from deployer.core.masking import mask
from deployer.core.steps import Step
from deployer.errors import DeployerError, InputError

BEAT = 10.0
PROGRESS_EVERY = 1.0  # seconds between progress lines of a dump or a restore
CHANGES_DEADLINE = ("dump", "verify", "record", "prune", "restore")


class Channel:
    """JSON lines to the caller, from the command and from the keep-alive thread."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._progress_at = 0.0

    def send(self, **message: Any) -> None:
        line = mask(json.dumps(message, default=str)) + "\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):  # the caller went away: the command still finishes cleanly
                pass

    def say(self, text: str) -> None:
        self.send(say=text)

    def progress(self, done: int, total: int | None = None) -> None:
        """Bytes a dump wrote or a restore read so far (at most one line a second)."""
        now = time.monotonic()
        if now - self._progress_at >= PROGRESS_EVERY:
            self._progress_at = now
            self.send(bytes=done, of=total)

    def beat(self) -> None:
        def loop() -> None:
            n = 0
            while not self._done.wait(BEAT):
                n += 1
                self.send(beat=n)

        threading.Thread(target=loop, name="beat", daemon=True).start()

    def close(self) -> None:
        self._done.set()


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"agent: {message}")


def parser() -> Parser:
    p = Parser(prog="python3 -m deployer.agent", add_help=False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in ("schedule", "health", "status", "list"):
        sub.add_parser(name, add_help=False)
    sub.add_parser("server", add_help=False).add_argument("--step", default=Step.STATUS.value)
    sub.add_parser("drill", add_help=False)
    b = sub.add_parser("base", add_help=False)
    b.add_argument("--type", default="incr")
    b.add_argument("--repo", type=int)
    sub.add_parser("info", add_help=False).add_argument("name")
    d = sub.add_parser("dump", add_help=False)
    d.add_argument("--label", default="manual")
    d.add_argument("--step", default=Step.BACKUP.value)
    d.add_argument("--database")
    d.add_argument("--no-verify", action="store_true")
    d.add_argument("--lock-wait-timeout", type=int, default=dumps.LOCK_WAIT)
    sub.add_parser("verify", add_help=False).add_argument("name", nargs="?")
    r = sub.add_parser("record", add_help=False)
    r.add_argument("name")
    r.add_argument("--kind", choices=("read", "restore"), required=True)
    r.add_argument("--ok", action="store_true")
    r.add_argument("--failed", action="store_true")
    r.add_argument("--detail", default="")
    pr = sub.add_parser("prune", add_help=False)
    pr.add_argument("--dry-run", action="store_true")
    pr.add_argument("--damaged", action="store_true")
    sub.add_parser("fetch", add_help=False).add_argument("name")
    rs = sub.add_parser("restore", add_help=False)
    rs.add_argument("name")
    rs.add_argument("--database", required=True)
    rs.add_argument("--maintenance-work-mem", default="256MB")
    sub.add_parser("cancel", add_help=False).add_argument("pid", type=int)
    return p


def check_args(args: argparse.Namespace) -> None:
    """Bad input: exit 2 before anything changes."""
    try:
        if getattr(args, "name", None):
            dumps.check_name(args.name)
        if getattr(args, "label", None) is not None:
            dumps.check_label(args.label)
        if getattr(args, "database", None):
            dumps.check_database(args.database)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.command == "dump" and not 1 <= args.lock_wait_timeout <= 86400:
        raise InputError("--lock-wait-timeout must be 1 to 86400 seconds")
    if args.command == "restore" and not re.fullmatch(r"[0-9]{1,6}(kB|MB|GB)", args.maintenance_work_mem):
        raise InputError("--maintenance-work-mem must look like 512MB")
    if args.command == "record" and args.ok == args.failed:
        raise InputError("record needs one of --ok or --failed")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
        check_args(args)
    except InputError as exc:
        print(json.dumps({"error": str(exc), "step": None, "input": True}), flush=True)
        return exc.exit_code
    if args.command in ("schedule", "health"):
        return _daemon(args.command)
    channel = Channel(sys.stderr if args.command == "fetch" else sys.stdout)
    channel.send(pid=os.getpid())
    boot.stop_on_signals()
    if args.command != "fetch":
        channel.beat()
    agent: Agent | None = None
    try:
        agent, warnings = boot.start()
        for warning in warnings:
            channel.say(f"warning: {warning}")
        result = run(agent, args, channel)
        if args.command in CHANGES_DEADLINE:
            health.write_deadline(agent)
        channel.close()
        if result is not None:
            channel.send(result=result)
        return 0
    except boot.Stopped:
        return _failed(channel, "stopped: nothing was left half-written", args.command, 130)
    except Exception as exc:
        error, step, code, bad_input = _explain(exc, getattr(args, "step", None) or args.command)
        notified = None
        if args.command in ("dump", "drill") and agent is not None and not bad_input:
            notified = report.failure(agent, step, error)  # the webhook, and `status`
        return _failed(channel, error, step, code, bad_input, notified)


def _explain(exc: Exception, step: str) -> tuple[str, str, int, bool]:
    """(message, step, exit code, bad input) of a failed command: one line, never a traceback."""
    if isinstance(exc, DeployerError):
        return str(exc), exc.step or step, exc.exit_code, isinstance(exc, InputError)
    if isinstance(exc, OSError):  # the folder or a file (a full disk): operational, not a bug
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", step, 1, False
    return f"internal {type(exc).__name__}: {exc}", step, 1, False  # a bug


def _failed(
    channel: Channel, error: str, step: str | None, code: int, bad_input: bool = False, notified: bool | None = None
) -> int:
    """The error line; `notified` says whether the webhook took the failure (None: not sent)."""
    channel.close()
    channel.send(error=error, step=step, input=bad_input, notified=notified)
    return code


def _daemon(command: str) -> int:
    try:
        agent, warnings = boot.start()
    except DeployerError as exc:
        report.log(f"ERROR: {exc}")
        return 1
    for warning in warnings:
        report.log(f"warning: {warning}")
    if command == "schedule":
        from deployer.agent import schedule

        return schedule.run(agent)
    try:
        ok, message = health.health(agent)
    except Exception as exc:
        ok, message = False, f"cannot judge: {type(exc).__name__}: {exc}"
    print(mask(message), flush=True)
    return 0 if ok else 1


def run(agent: Agent, args: argparse.Namespace, channel: Channel) -> Any:
    from deployer.agent import checks, prune, restore
    from deployer.agent import dump as dumping

    c, at = args.command, checks.now()
    if c == "status":
        return health.status(agent)
    if c == "list":
        rows = [dumpstate.row(j, at) for j in agent.folder.judged(at)]
        return {"database": agent.config.database, "dumps": rows, "writing": agent.folder.writing()}
    if c == "server":
        from deployer.agent.postgres import Postgres

        with Postgres(agent.config, agent.password) as pg:
            return pg.server(agent.config.database, step=args.step)
    if c == "drill":
        from deployer.agent import drill

        return asdict(drill.drill(agent, say=channel.say))
    if c == "base":
        from deployer.agent import basebackup

        return basebackup.take(agent, args.type, say=channel.say, repo=args.repo)
    if c == "info":
        return dumpstate.row(agent.folder.get(args.name, at), at)
    if c == "dump":
        j = dumping.take(
            agent,
            label=args.label,
            step=args.step,
            database=args.database,
            verify=not args.no_verify,
            lock_wait=args.lock_wait_timeout,
            say=channel.say,
            progress=channel.progress,
        )
        return dumpstate.row(j, checks.now())
    if c == "verify":
        name = args.name or checks.newest(agent.folder, agent.config.database)
        report = checks.full(agent.folder, name, step=Step.VERIFY)
        return {
            "name": name,
            "report": report,
            "dump": dumpstate.row(agent.folder.get(name, checks.now()), checks.now()),
        }
    if c == "record":
        j = checks.record(agent.folder, args.name, args.kind, args.ok, args.detail)
        return dumpstate.row(j, checks.now())
    if c == "prune":
        return asdict(prune.prune(agent, dry_run=args.dry_run, damaged=args.damaged, say=channel.say))
    if c == "fetch":
        checks.stream(agent.folder, args.name, sys.stdout.buffer)
        return None
    if c == "restore":
        _test_pause("restore", channel.say)
        done = restore.restore(
            agent,
            args.name,
            args.database,
            memory=args.maintenance_work_mem,
            say=channel.say,
            progress=channel.progress,
        )
        return asdict(done)
    if c == "cancel":
        return cancel(args.pid)
    raise InputError(f"agent: unknown command {c}")


def _test_pause(command: str, say) -> None:
    """A test harness hook, not a user option: DEPLOYER_TEST_PAUSE=<command>:<seconds> (passed
    on by the CLI) sleeps before the command changes anything, so a test can kill the CLI
    while it runs here."""
    name, _, seconds = os.environ.get("DEPLOYER_TEST_PAUSE", "").partition(":")
    if name == command:
        say(f"test pause before {command}")
        time.sleep(float(seconds or 30))


def cancel(pid: int) -> dict[str, Any]:
    """SIGTERM to another agent command (the CLI's Ctrl-C): it removes what it was writing."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().split(b"\0")
    except OSError:
        return {"pid": pid, "stopped": False}
    if b"deployer.agent" not in cmdline or pid == os.getpid() or pid == 1:
        raise InputError(f"process {pid} is not an agent command")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return {"pid": pid, "stopped": False}
    return {"pid": pid, "stopped": True}
