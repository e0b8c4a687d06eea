"""`deployer backup now|list|verify|fetch|restore|prune`: a few lines each; the work is in
deployer/flows/backups.py (which asks the backup agent in the `backup` container)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled, say

app = typer.Typer(
    no_args_is_help=True, help="Dump, list, verify, fetch, restore and prune database backups; restore to a moment."
)


def _checked(check, value: str, option: str) -> str:
    """Bad input exits 2 with one line, before the config is even read."""
    from deployer.errors import InputError

    try:
        return check(value)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None


@app.command()
@handled
def now(
    config: ConfigOption = None,
    env: EnvOption = None,
    label: Annotated[str, typer.Option("--label", help="A note kept with the dump.")] = "manual",
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip reading the dump back.")] = False,
) -> None:
    """Dump the database now (holding the release lock) and read it back; prints the dump's name."""
    from deployer.core import dumps
    from deployer.flows import backups

    _checked(dumps.check_label, label, "--label")
    with context(config, env) as ctx:
        print(backups.now(ctx, label=label, verify=not no_verify))


@app.command("list")
@handled
def list_(
    config: ConfigOption = None,
    env: EnvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every dump, oldest first, with its state now: verified, stale, unverified or DAMAGED."""
    from deployer.flows import backups

    with context(config, env, check_paths=False) as ctx:
        found = backups.listing(ctx)
    if as_json:
        print(json.dumps(found["dumps"], indent=2))
        return
    for r in found["dumps"]:
        other = "" if r["database"] == found["database"] else f"  [database {r['database'] or '?'}]"
        print(f"{r['name']}  {r['created']}  {r['size_text']:>9}  {r['verified']}  {r['label']}{other}")
    for name in found["writing"]:
        print(f"{name}  being written")
    if not found["dumps"] and not found["writing"]:
        print("no dumps")


@app.command()
@handled
def verify(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="The dump (default: the newest).")] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    restore: Annotated[
        bool, typer.Option("--restore", help="Also restore it into a scratch server and query it.")
    ] = False,
) -> None:
    """Check a dump's sha256 and read every data block; --restore also restores and queries it."""
    from deployer.core import dumps
    from deployer.flows import backups

    if name is not None:
        _checked(dumps.check_name, name, "NAME")
    with context(config, env, check_paths=False) as ctx:
        name, report = backups.verify(ctx, name, restore=restore)
    for line in report:
        print(line)
    print(f"{name}: ok")


@app.command()
@handled
def drill(
    config: ConfigOption = None,
    env: EnvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Restore the newest dump into a scratch server in the backup service and check it (as the
    scheduled drill does): rows, pg_amcheck, pgvector. A failure exits 1 and is notified."""
    from deployer.flows import backups

    with context(config, env, check_paths=False) as ctx:
        done = backups.drill(ctx)
    if as_json:
        print(json.dumps(done, indent=2))
        return
    print(
        f"{done['dump']}: restored and checked in {done['seconds']:.1f} s: {done['tables']} tables, "
        f"{done['rows']} rows, pg_amcheck {done['amcheck']}, pgvector {done['pgvector']}"
    )


@app.command()
@handled
def fetch(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The dump to copy to this machine.")],
    config: ConfigOption = None,
    env: EnvOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File or folder (default: ./NAME.dump).")
    ] = None,
) -> None:
    """Copy a dump to this machine (from any engine), checked against its sha256; the file is 0600."""
    from deployer.core import dumps
    from deployer.flows import backups

    _checked(dumps.check_name, name, "NAME")
    with context(config, env, check_paths=False) as ctx:
        path, digest = backups.fetch(ctx, name, output)
    say(f"sha256 {digest} ok")
    print(path)


@app.command()
@handled
def base(
    config: ConfigOption = None,
    env: EnvOption = None,
    kind: Annotated[str, typer.Option("--type", help="full, diff or incr.")] = "incr",
) -> None:
    """A pgBackRest backup now (with [backup] pitr): the start of a restore to a moment."""
    from deployer.core import pitr
    from deployer.errors import InputError
    from deployer.flows import pitr as flow

    if kind not in pitr.KINDS:
        raise InputError(f"--type: {kind!r} is not one of {', '.join(pitr.KINDS)}")
    with context(config, env) as ctx:
        flow.required(ctx)
        done = flow.base(ctx, kind)
    for row in done:
        print(f"{row['label']}  {row['type']}  {row['size']} bytes in repository {row['repo']}")


@app.command()
@handled
def restore(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="The dump to restore (not with --to-time).")
    ] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    database: Annotated[str | None, typer.Option("--database", help="Target database (default: the app's).")] = None,
    to_time: Annotated[
        str | None,
        typer.Option("--to-time", help="'YYYY-MM-DD HH:MM:SS' (UTC): restore to that moment ([backup] pitr)."),
    ] = None,
    into: Annotated[str | None, typer.Option("--into", help="'scratch': a copy on the data network, to look.")] = None,
    source: Annotated[
        str | None, typer.Option("--from", help="The repository: local, or sftp / s3 (off the host) alone.")
    ] = None,
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="Remove the data volumes kept by earlier restores to a moment.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Really replace the target's data.")] = False,
) -> None:
    """Restore a dump (after a safety dump of the target), all or nothing; or, with --to-time,
    the database as it was at a moment (the old data volume is kept until --drop-old)."""
    from deployer.core import dumps
    from deployer.errors import InputError

    if to_time is not None or into is not None or drop_old or source is not None:
        return _restore_pitr(config, env, name, database, to_time, into, source, drop_old, yes)
    if name is None:
        raise InputError("NAME: which dump to restore (or --to-time for a moment)")
    _checked(dumps.check_name, name, "NAME")
    if database is not None:
        _checked(dumps.check_database, database, "--database")
    if not yes:
        raise InputError(f"restoring {name} replaces the data of {database or 'the database'}: add --yes")
    from deployer.flows import backups

    with context(config, env) as ctx:
        done = backups.restore(ctx, name, database)
    if done.get("safety"):
        say(f"safety dump of {done['database']} taken first: {done['safety']}")
    for table, rows in done["tables"]:
        print(f"{table}\t{rows}")


def _restore_pitr(config, env, name, database, to_time, into, source, drop_old, yes) -> None:
    """`restore --to-time T [--into scratch]` and `restore --drop-old` (flows/pitr_restore.py)."""
    from deployer.core import pitr
    from deployer.errors import InputError

    if name is not None or database is not None:
        raise InputError("--to-time and --drop-old restore the whole database: no NAME, no --database")
    if into not in (None, "scratch"):
        raise InputError(f"--into: {into!r}: the one place is 'scratch'")
    if source is not None and source not in pitr.REPOS:
        raise InputError(f"--from: {source!r} is not one of {', '.join(pitr.REPOS)}")
    if to_time is None and not drop_old:
        raise InputError("--into scratch needs --to-time")
    when = _checked(pitr.parse_time, to_time, "--to-time") if to_time is not None else None
    if into is None and not yes:
        what = f"restoring the database to {pitr.show(when)} replaces its data" if when else "--drop-old removes data"
        raise InputError(f"{what}: add --yes")
    from deployer.flows import pitr as flow
    from deployer.flows import pitr_restore

    with context(config, env) as ctx:
        flow.required(ctx)
        repo = pitr.repository_number(ctx.config.backup, source)
        if when is not None:
            restore = pitr_restore.scratch if into else pitr_restore.in_place
            lines = restore(ctx, when, repo=repo)
            for line in lines:
                print(line)
        if drop_old:
            gone = pitr_restore.drop_old(ctx)
            print("\n".join(f"removed volume {v}" for v in gone) or "no kept data volumes")


@app.command()
@handled
def prune(
    config: ConfigOption = None,
    env: EnvOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
    damaged: Annotated[bool, typer.Option("--damaged", help="Also delete the dumps found damaged.")] = False,
) -> None:
    """Apply the retention policy (backup.keep_*) to the dumps of the configured database."""
    from deployer.flows import backups

    with context(config, env, check_paths=False) as ctx:
        done = backups.prune(ctx, dry_run=dry_run, damaged=damaged)
    for name, why in sorted(done["keep"].items()):
        print(f"keep {name} ({why})")
    for name in done["delete"]:
        print(f"{'would delete' if dry_run else 'deleted'} {name}")
