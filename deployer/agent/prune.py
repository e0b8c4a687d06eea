"""Apply the retention policy to the dumps of the configured database.

Only usable dumps of that database are candidates. Before anything is deleted, the dump
kept as the newest verified one is re-hashed in full: if it no longer matches its
sha256 it is recorded as damaged and the next one is tried. When no dump passes, nothing
is deleted. Dumps of other databases and damaged dumps are never deleted (damaged ones
only with `damaged=True`), only reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from deployer.agent import checks
from deployer.agent.boot import Agent
from deployer.core import retention
from deployer.core.steps import Step
from deployer.errors import BackupError


@dataclass
class Outcome:
    """What a retention pass kept, deleted and cleaned."""

    keep: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    other_databases: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    rehashed: list[str] = field(default_factory=list)
    note: str = ""


def policy(agent: Agent) -> retention.Policy:
    c = agent.config
    return retention.Policy(c.keep_last, c.keep_daily, c.keep_weekly, c.keep_monthly)


def plan(agent: Agent, *, step: str, record: bool) -> tuple[Outcome, retention.Decision | None]:
    folder, database = agent.folder, agent.config.database
    out = Outcome()
    untrusted: set[str] = set()
    while True:
        judged = folder.judged(datetime.now(UTC))
        mine = [j for j in judged if j.database == database]
        out.other_databases = [j.name for j in judged if j.database != database and j.usable]
        out.damaged = [j.name for j in judged if not j.usable or j.name in untrusted]
        candidates = [
            retention.Candidate(j.name, j.created, j.good) for j in mine if j.usable and j.name not in untrusted
        ]
        decision = retention.decide(candidates, policy(agent))
        if decision.newest_verified is None:
            out.keep = {c.name: "no verified dump to rely on" for c in candidates}
            out.note = f"no dump of {database} passed a full check: nothing is deleted (verify one first)"
            return out, None
        newest = next(j for j in mine if j.name == decision.newest_verified)
        out.rehashed.append(newest.name)
        if checks.rehash(folder, newest, step=step, record=record):
            out.keep = dict(decision.keep)
            out.delete = list(decision.delete)
            return out, decision
        untrusted.add(newest.name)


def prune(agent: Agent, *, dry_run: bool, damaged: bool = False, step: str = Step.PRUNE, say=lambda m: None) -> Outcome:
    folder = agent.folder
    cleaned = [] if dry_run else folder.clean()
    out, decision = plan(agent, step=step, record=not dry_run)
    out.cleaned = cleaned
    for name in out.rehashed[:-1] if decision else out.rehashed:
        say(f"{name} no longer matches its sha256: recorded as damaged, not relied on")
    if out.note:
        say(out.note)
    targets = list(out.delete) + (out.damaged if damaged and decision else [])
    if damaged and decision:
        out.delete = targets
    for name in targets:
        say(f"{'would delete' if dry_run else 'deleting'} {name}")
        if not dry_run:
            try:
                folder.delete(name)
            except OSError as exc:
                raise BackupError(f"cannot delete {name}: {exc.strerror}", step=step) from None
            out.deleted.append(name)
    if out.damaged and not damaged:
        say(f"damaged, kept for inspection: {', '.join(out.damaged)} (`deployer backup prune --damaged` deletes them)")
    return out
