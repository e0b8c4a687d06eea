"""`deployer backup ...`: a few lines per command; everything heavy is imported inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deployer.console import ConfigOption, handled, load_config, say

app = typer.Typer(no_args_is_help=True, help="Dump, list, verify, restore and prune database backups.")

def _config(path: Path | None):
    return load_config(path)


@app.command()
@handled
def now(
    config: ConfigOption = None,
    label: Annotated[str, typer.Option("--label", help="A note kept with the dump.")] = "manual",
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip reading the dump back.")] = False,
) -> None:
    """Take one dump now, and verify it."""
    from deployer.backup import naming, service
    from deployer.errors import InputError

    try:
        naming.check_label(label)
    except ValueError as exc:
        raise InputError(f"--label: {exc}") from None
    print(service.take(_config(config), label=label, verify=not no_verify, step="backup", say=say))


@app.command("list")
@handled
def list_(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the dumps, oldest first, with time, size, label and verification state."""
    from deployer.backup import catalogue

    rows = [catalogue.summary(m) for m in catalogue.entries(catalogue.folder_of(_config(config)))]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['name']}  {r['created']}  {r['size_text']:>9}  {r['verified']:<18}  {r['label']}")
    if not rows:
        print("no dumps")


@app.command()
@handled
def verify(
    name: Annotated[str | None, typer.Argument(help="The dump (default: the newest).")] = None,
    config: ConfigOption = None,
    restore: Annotated[bool, typer.Option("--restore", help="Also restore it into a scratch server.")] = False,
) -> None:
    """Check a dump's sha256 and read every data block; --restore also restores it and queries it."""
    from deployer.backup import catalogue
    from deployer.backup import verify as checks
    from deployer.errors import InputError

    cfg = _config(config)
    folder = catalogue.folder_of(cfg)
    meta = catalogue.get(folder, name) if name else catalogue.newest(folder)
    if meta is None:
        raise InputError(f"no dumps in {folder}")
    for line in checks.verify(cfg, meta, full_restore=restore):
        print(line)
    print(f"{meta.name}: ok")


@app.command()
@handled
def restore(
    name: Annotated[str, typer.Argument(help="The dump to restore.")],
    config: ConfigOption = None,
    database: Annotated[str | None, typer.Option("--database", help="Target database (default: the app's).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really replace the target's data.")] = False,
    memory: Annotated[
        str | None, typer.Option("--maintenance-work-mem", help="For index rebuilds, e.g. 512MB (default: 3/4 of /dev/shm).")
    ] = None,
) -> None:
    """Restore a dump into the database (after a safety dump of it); all or nothing."""
    import re

    from deployer.errors import InputError

    if database is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", database):
        raise InputError("--database must be a plain identifier (letters, digits, '_')")
    if memory is not None and not re.fullmatch(r"\d{1,6}(kB|MB|GB)", memory):
        raise InputError("--maintenance-work-mem must look like 512MB")
    cfg = _config(config)
    from deployer.backup import catalogue, recover

    meta = catalogue.get(catalogue.folder_of(cfg), name)
    if not yes:
        raise InputError(f"restoring {name} replaces the data of {database or cfg.database.name}: add --yes")
    for table, rows in recover.restore(cfg, meta, database or cfg.database.name, memory=memory, say=say):
        print(f"{table}\t{rows}")


@app.command()
@handled
def prune(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
) -> None:
    """Apply the retention policy (backup.keep_*)."""
    from deployer.backup import service

    decision = service.prune(_config(config), dry_run=dry_run, say=lambda m: print(m))
    for name, why in sorted(decision.keep.items()):
        print(f"keep {name} ({why})")


@app.command(hidden=True)
@handled
def schedule(config: ConfigOption = None) -> None:
    """Run forever: dump at every time of backup.schedule (the `backup` service runs this)."""
    from deployer.backup import schedule as loop
    from deployer.config import find

    loop.run_forever(str(find(config)))


@app.command(hidden=True)
@handled
def check(config: ConfigOption = None) -> None:
    """Exit 1 when the newest verified dump is older than the schedule allows."""
    from datetime import datetime, timezone

    from deployer.backup import catalogue
    from deployer.backup import schedule as loop
    from deployer.errors import BackupError

    cfg = load_config(config, check_paths=False)  # runs in the backup container
    newest = catalogue.newest_verified(catalogue.folder_of(cfg))
    if newest is None:
        raise BackupError("no verified dump yet", step="check")
    now = datetime.now(timezone.utc)
    if loop.overdue(cfg.backup.schedule, newest.created_at, newest.created_at, now):
        raise BackupError(f"newest verified dump {newest.name} is overdue for {cfg.backup.schedule!r}", step="check")
    print(f"ok: {newest.name}")
