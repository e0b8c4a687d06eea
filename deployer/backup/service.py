"""What the CLI, the release and the schedule call: take (dump + verify), prune, and failure reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from deployer import engine
from deployer.console import say
from deployer.backup import catalogue, dump, naming, retention
from deployer.backup import verify as checks
from deployer.errors import BackupError, DeployerError

STALE_PARTIAL = 6 * 3600  # a partial file untouched this long was left by a killed process


def take(
    config,
    *,
    label: str = "",
    verify: bool = True,
    step: str = "backup",
    database: str | None = None,
    say: Callable[[str], None] = say,
) -> str:
    """Take one dump (and read it back); returns its name. A failure leaves no dump and raises."""
    database = database or config.database.name
    folder = catalogue.folder_of(config)
    try:
        attrs = engine.container_state(config.db_container)
        if not attrs or not attrs["State"].get("Running"):
            raise BackupError(f"the database container {config.db_container} is not running", step=step)
        taken = {m.name for m in catalogue.entries(folder)} | {n for n, _, _ in catalogue.partials(folder)}
        name = naming.new_name(datetime.now(timezone.utc), taken)
        meta = dump.take(config.db_container, folder, database=database, label=label, step=step, name=name)
        say(f"dump {name}: {naming.human_size(meta.size)} in {meta.duration:.1f}s ({meta.compression})")
        if verify:
            checks.verify(config, meta, full_restore=False, step=step)
            say(f"dump {name}: sha256 and every data block verified")
    except DeployerError as exc:
        report_failure(config, step, exc)
        raise
    return name


def report_failure(config, step: str, exc: Exception) -> None:
    """POST the failure to backup.webhook when one is set; never raises."""
    url = config.backup.webhook
    if not url:
        return
    try:
        import httpx

        httpx.post(
            url,
            json={"project": config.name, "event": "backup_failed", "step": step, "error": str(exc)[-1000:]},
            timeout=config.backup.webhook_timeout,
        )
    except Exception as err:  # httpx.HTTPError, OSError: reporting must not hide the failure
        say(f"webhook failed: {type(err).__name__}")


def policy(config) -> retention.Policy:
    b = config.backup
    return retention.Policy(b.keep_last, b.keep_daily, b.keep_weekly, b.keep_monthly)


def prune_plan(config) -> retention.Decision:
    folder = catalogue.folder_of(config)
    candidates = [
        retention.Candidate(m.name, m.created_at, m.verified) for m in catalogue.entries(folder)
    ] + [
        retention.Candidate(name, naming.created_from_name(name), False, writing=True)
        for name, _, age in catalogue.partials(folder)
        if age < STALE_PARTIAL
    ]
    return retention.decide(candidates, policy(config))


def prune(config, *, dry_run: bool, say: Callable[[str], None] = say) -> retention.Decision:
    folder = catalogue.folder_of(config)
    decision = prune_plan(config)
    for name in decision.delete:
        say(f"{'would delete' if dry_run else 'deleting'} {name}")
        if not dry_run:
            catalogue.remove(folder, name)
    for name, path, age in catalogue.partials(folder):
        if age >= STALE_PARTIAL:
            say(f"{'would delete' if dry_run else 'deleting'} abandoned partial {path.name}")
            if not dry_run:
                path.unlink(missing_ok=True)
    for path in catalogue.orphans(folder):
        if not dry_run:
            path.unlink(missing_ok=True)
    return decision
