"""The edge adapter: everything the deployer reads from or writes to the edge container.

The edge volume (core/edgelayout.py's HOME) is the host's truth: the route state, the lock, the
history and the rendered site. Each operation is one exec of a script from
deployer.core.scripts, through the engine's one exec path.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Any

from deployer.adapters.engine import Engine, ExecResult
from deployer.core import adminpage, lockrecord, names, scripts, switchscript
from deployer.core import history as history_rule
from deployer.core import probe as probe_rule
from deployer.core.state import EdgeState, Pending, Record, parse_dump
from deployer.core.steps import Step
from deployer.errors import EdgeError, InputError, LockError, SwitchError


@dataclass(frozen=True)
class Switched:
    """What a switch's exec did."""

    previous: str  # the colour that was live before ('' for none)
    already: bool  # the target was live already: nothing changed
    record: Record | None  # the target's release


@dataclass(frozen=True)
class Taken:
    """A lock taken, with the route state read in the same exec."""

    state: EdgeState
    stale: str  # the b64 holder record of a stale lock that was taken over, or ''


class Edge:
    def __init__(self, engine: Engine, project: str, deployment: str = "", *, container: str = "") -> None:
        self.engine = engine
        self.project = project
        self.deployment = deployment
        # The serving edge (or, given, another edge container: one being replaced).
        self.container = container or names.infra_container(project, "edge")
        # The token of the lock this command holds (flows/lock.py sets it): while it is set,
        # a route state write changes nothing unless the lock is still this token's.
        self.token = ""

    def run(self, script: str, *, step: str, env: dict[str, str] | None = None) -> ExecResult:
        return self.engine.exec(self.container, ["sh", "-c", script], step=step, env=env)

    def require(self) -> None:
        """EdgeError unless the edge container runs."""
        c = self.engine.container(self.container)
        if c is None or not c.running:
            where = f" on {self.engine.host}" if self.engine.host else ""
            raise EdgeError(f"the edge {self.container} is not running{where} (run `deployer up`)", step=Step.EDGE)

    # -- route state ----------------------------------------------------------------------
    def state(self, *, step: str = Step.READ_ROUTES) -> EdgeState:
        result = self.run(scripts.read_state(), step=step)
        return EdgeState.parse(parse_dump(result.stdout, scripts.SEPARATOR))

    def _write_state(self, name: str, content: str | None, *, step: str) -> ExecResult:
        result = self.run(scripts.write_state(name, content, self.token), step=step)
        if result.exit_code == scripts.LOCK_LOST:
            raise LockError(
                "this command's lock was taken over by another command, so it must not change the route state: "
                f"the {name} route state was left as that command has it",
                step=step,
            )
        return result

    def write_pending(self, pending: Pending | None, *, step: str) -> None:
        """Mark a release as started (None: as finished or undone)."""
        result = self._write_state("pending", pending.render() if pending else None, step=step)
        if not result.ok:
            raise EdgeError(f"could not write the route state: {(result.stdout + result.stderr).strip()}", step=step)

    def write_record(self, colour: str, record: Record | None, *, step: str) -> None:
        result = self._write_state(colour, record.render() if record else None, step=step)
        if not result.ok:
            raise EdgeError(
                f"could not write the route state of {colour}: {(result.stdout + result.stderr).strip()}", step=step
            )

    # -- which deployment ---------------------------------------------------------------------
    def _run_owned(self, script: str, *, step: str) -> ExecResult:
        """Run a script that starts with scripts.check_deployment; refuse another config's edge.
        An edge that a first `up` left unmarked (it failed before marking the volume) is
        marked and the script run again, when the container's label says it is ours."""
        result = self.run(script, step=step)
        unmarked = result.exit_code == scripts.WRONG_DEPLOYMENT and not _their_id(result)
        if unmarked and self.deployment and self.owner() == self.deployment:
            self.mark_deployment(step=step)
            result = self.run(script, step=step)
        if result.exit_code == scripts.WRONG_DEPLOYMENT:
            theirs = _their_id(result) or "none"
            raise InputError(
                f"the deployment {self.project!r} on {self.engine.where} was created from another config "
                f"(id {theirs!r}; this config's project.id is {self.deployment or 'not set'!r}): nothing was changed"
            )
        return result

    def mark_deployment(self, *, step: str) -> None:
        self.run(scripts.mark_deployment(self.deployment), step=step)

    def owner(self) -> str | None:
        """The deployment id on the edge container's label (None when there is no edge)."""
        c = self.engine.container(self.container)
        return None if c is None else c.labels.get(names.LABEL_DEPLOYMENT, "")

    # -- lock -------------------------------------------------------------------------------
    def take_lock(self, holder: lockrecord.Holder, lease: int, *, step: str = Step.LOCK) -> Taken:
        """Take the lock and read the route state in one exec."""
        script = scripts.take_lock(holder.to_json(), lease, self.deployment) + "\n" + scripts.read_state()
        result = self._run_owned(script, step=step)
        first = result.stdout.split("\n", 1)[0]
        if result.exit_code == scripts.LOCK_HELD:
            _, left, record = (first.split(" ") + ["", ""])[:3]
            raise LockError(
                f"another command holds the lock: {lockrecord.describe(record)}; its lease runs {left}s more",
                step=step,
            )
        if not result.ok:
            raise LockError(f"could not take the lock: {(result.stderr or result.stdout).strip()}", step=step)
        stale = first.split(" ", 1)[1] if first.startswith("stale ") else ""
        return Taken(EdgeState.parse(parse_dump(result.stdout, scripts.SEPARATOR)), stale)

    def renew_lock(self, token: str, lease: int) -> bool:
        """False only when the lock is no longer this token's (another failure: try again)."""
        return self.run(scripts.renew_lock(token, lease), step=Step.LOCK).exit_code != scripts.LOCK_LOST

    def free_lock(self, token: str) -> None:
        self.run(scripts.free_lock(token), step=Step.UNLOCK)

    def close_lock(self, token: str, *, step: str) -> None:
        """Keep the lock this token's until the edge is gone (the end of `down`)."""
        if self.run(scripts.close_lock(token), step=step).exit_code == scripts.LOCK_LOST:
            raise LockError("this command's lock was lost (it stalled past its lease): stopping here", step=step)

    def read_lock(self) -> tuple[int, str] | None:
        """(seconds left of the lease, b64 holder record), or None when the lock is free."""
        out = self.run(scripts.read_lock(), step=Step.LOCK).stdout.strip()
        if not out:
            return None
        left, _, record = out.partition(" ")
        return int(left) if left.lstrip("-").isdigit() else 0, record

    def break_lock(self) -> bool:
        return self.run(scripts.break_lock(), step=Step.UNLOCK).stdout.strip() == "removed"

    # -- probes -----------------------------------------------------------------------------
    def probe(self, probes: list[probe_rule.Probe], timeout: float, *, step: str) -> list[str]:
        """Why the probes failed; empty when every one passed."""
        result = self.run(probe_rule.script(probes, timeout), step=step)
        return probe_rule.failures(probes, result.stdout)

    def poll(
        self, probes: list[probe_rule.Probe], timeout: float, *, budget: float, interval: float, step: str
    ) -> list[str]:
        """Repeat the probes inside the edge for up to `budget` seconds, until they pass (one exec)."""
        return self.poll_then(probes, [], timeout, budget=budget, interval=interval, step=step)[0]

    def poll_then(
        self,
        probes: list[probe_rule.Probe],
        then: list[probe_rule.Probe],
        timeout: float,
        *,
        budget: float,
        interval: float,
        step: str,
    ) -> tuple[list[str], list[str] | None]:
        """poll, and once the probes pass, the `then` probes once in the same exec: (the
        probes' failures, then's failures: None when they did not run)."""
        script = probe_rule.poll_script(probes, timeout, budget=budget, interval=interval, then=then)
        result = self.run(script, step=step)
        return probe_rule.polled(probes, then, result.stdout, result.ok)

    # -- switching --------------------------------------------------------------------------
    def commit(
        self, colour: str, verify: list[probe_rule.Probe], history_line: str, token: str, timeout: float
    ) -> None:
        env = {}
        if os.environ.get("DEPLOYER_TEST_COMMIT_PAUSE"):
            env["DEPLOYER_TEST_COMMIT_PAUSE"] = os.environ["DEPLOYER_TEST_COMMIT_PAUSE"]
        result = self.run(scripts.commit(colour, verify, history_line, token, timeout), step=Step.SWITCH, env=env)
        if result.exit_code == scripts.VERIFY_FAILED:
            raise EdgeError(
                f"{colour} did not answer through the live route; the previous live colour is back: "
                + "; ".join(probe_rule.failures(verify, result.stdout)),
                step=Step.SWITCH,
            )
        if result.exit_code == scripts.LOCK_LOST:
            raise LockError("the lock was taken over while this release ran; live is unchanged", step=Step.SWITCH)
        if not result.ok or "committed" not in result.stdout:
            raise EdgeError(
                f"switching failed in the edge: {(result.stderr or result.stdout).strip()}", step=Step.SWITCH
            )

    def switch(
        self,
        target: str,
        holder: lockrecord.Holder,
        probes: list[probe_rule.Probe],
        verify: list[probe_rule.Probe],
        history_line: str,
        timeout: float,
        lease: int,
    ) -> tuple[Switched, str]:
        """One exec; returns the outcome and the b64 record of a stale lock it took over ('' if none)."""
        script = switchscript.switch(
            target, holder.to_json(), holder.token, lease, probes, verify, history_line, timeout, self.deployment
        )
        result = self._run_owned(script, step=Step.SWITCH)
        out = result.stdout
        first = out.split("\n", 1)[0]
        stale = first.split(" ", 1)[1] if first.startswith("stale ") else ""
        if result.exit_code == scripts.LOCK_HELD:
            line = next((x for x in out.splitlines() if x.startswith("held ")), "held 0 ")
            _, left, record = (line.split(" ") + ["", ""])[:3]
            raise LockError(
                f"another command holds the lock: {lockrecord.describe(record)}; its lease runs {left}s more",
                step=Step.LOCK,
            )
        if result.exit_code == scripts.PENDING:
            pending = Pending.parse(out[out.find("colour ") :]) if "colour " in out else None
            what = f"{pending.version} ({pending.release})" if pending else "a release"
            raise LockError(
                f"cannot switch to {target}: {what} was being released to it when its process was killed, so "
                f"{target}'s route state names a release that never passed its checks. Run `deployer lock release` "
                f"to put {target}'s previous release back (or release again)",
                step=Step.CHECK,
            )
        if result.exit_code == scripts.NO_RELEASE:
            raise SwitchError(f"cannot switch to {target}: it has no release (release to it first)", step=Step.CHECK)
        if result.exit_code == scripts.TARGET_UNHEALTHY:
            raise SwitchError(
                f"cannot switch to {target}: it is not healthy: " + "; ".join(probe_rule.failures(probes, out)),
                step=Step.CHECK,
            )
        if result.exit_code == scripts.VERIFY_FAILED:
            raise EdgeError(
                f"{target} did not answer through the live route; the previous live colour is back: "
                + "; ".join(probe_rule.failures(verify, out)),
                step=Step.VERIFY,
            )
        if not result.ok:
            raise EdgeError(f"switch failed in the edge: {(result.stderr or out).strip()}", step=Step.SWITCH)
        lines = out.splitlines()
        already = "already" in lines
        previous = ""
        for line in lines:
            if line.startswith("switched from "):
                previous = line.rpartition(" ")[2]
        previous = "" if previous == "none" else previous
        marker = "already" if already else next((x for x in lines if x.startswith("switched from ")), "")
        record_text = "\n".join(lines[lines.index(marker) + 1 :]) if marker in lines else ""
        return Switched(
            previous=target if already else previous, already=already, record=Record.parse(target, record_text)
        ), stale

    # -- history ----------------------------------------------------------------------------
    def append_history(self, line: str, *, step: str) -> None:
        self.run(scripts.append_history(line), step=step)

    def note_dump(self, line: str, *, step: str) -> None:
        """A dump (history.dump_note) on the status page's list of the last ones."""
        self.run(scripts.note_dump(line), step=step)

    def history(self, last: int = 10) -> list[dict[str, Any]]:
        out = self.run(scripts.read_history(last), step=Step.READ_HISTORY).stdout
        return history_rule.parse([line for line in out.splitlines() if line.strip()])

    # -- site -------------------------------------------------------------------------------
    def apply_site(self, content: str, *, step: str) -> bool:
        """True when nginx reloaded, False when the site was unchanged."""
        result = self.run(scripts.apply_site(content), step=step)
        output = (result.stdout + result.stderr).strip()
        if result.exit_code == scripts.SITE_REJECTED:
            raise EdgeError(
                "nginx -t rejected the rendered site config; the live config is untouched", step=step, logs=output
            )
        if not result.ok:
            raise EdgeError("nginx reload failed; the previous site config was put back", step=step, logs=output)
        return output.endswith("reloaded")

    def published_port(self, port: int) -> int | None:
        """The host port of one of the edge's ports: its ports holder publishes them (an edge
        of the earlier layout, not moved yet by `deployer up`, publishes them itself)."""
        holder = names.infra_container(self.project, "ports")
        return self.engine.published_port(holder, port) or self.engine.published_port(self.container, port)

    # -- replacement (flows/edge_roll.py) -------------------------------------------------------
    def stage_site(self, content: str, *, step: str) -> bool:
        """Write a new site for the next edge to start with, no reload; True when it changed."""
        result = self.run(scripts.stage_site(content), step=step)
        if not result.ok:
            raise EdgeError("could not write the new site config", step=step, logs=result.stdout + result.stderr)
        return result.stdout.strip().endswith("staged")

    def unstage_site(self, *, step: str) -> None:
        self.run(scripts.UNSTAGE_SITE, step=step)

    def drain(self, *, step: str) -> bool:
        """Close each keep-alive connection after its next answer; False when this edge cannot."""
        return self.run(scripts.DRAIN, step=step).ok

    def drained(self, limit: float, *, step: str) -> tuple[int, int] | None:
        """Wait for the client connections of a draining edge to end: (active, waiting) at the end."""
        parts = self.run(scripts.drained(limit), step=step).stdout.split()
        return (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(p.isdigit() for p in parts) else None

    # -- metrics ----------------------------------------------------------------------------
    def metrics(self, window: int | None = None) -> str:
        url = f"{probe_rule.PREVIEW}/_deployer/metrics" + (f"?window={int(window)}" if window else "")
        result = self.run(f"curl -sf --max-time 5 '{url}'", step=Step.METRICS)
        return result.stdout if result.ok else ""

    def admin_get(self, path: str) -> tuple[int, str, str]:
        """GET one of core/adminpage.py's paths from the admin port: status, content type, body."""
        if adminpage.admin_path(path) is None:
            raise InputError(f"not a path of the status page or the metrics: {path[:80]!r}")
        url = shlex.quote(probe_rule.PREVIEW + path)
        out = self.run(f"curl -s --max-time 10 -w '\\n%{{http_code}} %{{content_type}}' {url}", step=Step.PAGE)
        body, _, tail = out.stdout.rpartition("\n")
        status, _, kind = tail.partition(" ")
        if not out.ok or not status.isdigit() or status == "000":
            raise EdgeError(f"the edge's admin port did not answer {path}", step=Step.PAGE, logs=out.stderr)
        return int(status), kind.strip() or "application/octet-stream", body

    def forget_metrics(self, *, step: str) -> list[str]:
        """Drop the counters of every release that no colour holds; returns those releases."""
        out = self.run(scripts.FORGET_METRICS, step=step)
        if not out.ok or not out.stdout.startswith("forgot"):
            raise EdgeError("the edge did not forget the metrics of gone releases", step=step, logs=out.stderr)
        return out.stdout.split()[1:]


def _their_id(result: ExecResult) -> str:
    """The deployment id that scripts.check_deployment printed ('' for an unmarked edge)."""
    return result.stdout.strip().partition(" ")[2]
