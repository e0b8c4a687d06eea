"""The command line through typer: each command is a few lines that load the config, call
one flow and print its outcome. Heavy imports happen inside the commands, so each pays only
for what it uses; `deployer switch` in its plain forms does not even come here (hot.py)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from typer._click.exceptions import NoArgsIsHelpError, NoSuchOption, UsageError

from deployer.cli.common import ConfigOption, EnvOption, context, error, handled, say
from deployer.cli.hot import switch as run_switch
from deployer.cli.safety import WatchOption, watch_seconds

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Zero-downtime blue-green releases of your app's services and PostgreSQL with pgvector, on any Docker host.",
)


def _version(value: bool) -> None:
    if value:
        import deployer  # the installed distribution's version, read only here

        print(f"deployer {deployer.__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress lines: only warnings, errors and results.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print every engine call (as DEPLOYER_DEBUG=1 does).")
    ] = False,
) -> None:
    """Zero-downtime blue-green releases of your app's services and PostgreSQL with pgvector."""
    from deployer.cli.common import output

    output(quiet=quiet, verbose=verbose)


@app.command()
@handled
def up(
    config: ConfigOption = None,
    env: EnvOption = None,
    recreate_db: Annotated[
        bool, typer.Option("--recreate-db", help="Allow recreating the database container (a verified dump first).")
    ] = False,
    refresh_images: Annotated[
        bool,
        typer.Option(
            "--refresh-images", help="Rebuild the edge, database and agent images without the cache (security updates)."
        ),
    ] = False,
) -> None:
    """Create or update the networks, the edge, the database and the backup service. Idempotent."""
    with context(config, env) as ctx:
        ctx.runtime.up(recreate_db=recreate_db, refresh=refresh_images)


@app.command()
@handled
def release(
    # An argument's metavar, here and in every command: without one, typer 0.28 names it in
    # lower case ("{version}", "Missing argument 'version'") while each help text says VERSION.
    version: Annotated[
        str, typer.Argument(metavar="VERSION", help="Version to release: the image tag of every service.")
    ],
    config: ConfigOption = None,
    env: EnvOption = None,
    build: Annotated[bool, typer.Option("--build", help="Build missing images from services.*.build.")] = False,
    backup: Annotated[bool, typer.Option("--backup/--no-backup", help="Dump the database first.")] = True,
    watch: WatchOption = None,
) -> None:
    """Start the idle colour at VERSION, wait on health, switch live traffic to it, then watch it."""
    from deployer.core.versions import check_version

    check_version(version)
    window = watch_seconds(watch)
    from deployer.flows import release as flow

    with context(config, env) as ctx:
        flow.release(ctx, version, build=build, backup=backup, watch=window)


@app.command()
@handled
def switch(
    to: Annotated[str, typer.Option("--to", help="The colour to make live: blue or green.")],
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Move live traffic to the other, still running colour (instant rollback)."""
    run_switch(to, config, env)


@app.command()
@handled
def rollback(
    version: Annotated[
        str | None,
        typer.Argument(metavar="VERSION", help="Make live the colour that runs it, or release its kept images."),
    ] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would do, and change nothing.")] = False,
    backup: Annotated[
        bool, typer.Option("--backup/--no-backup", help="When it releases VERSION: dump the database first.")
    ] = True,
    watch: WatchOption = None,
) -> None:
    """Make the warm standby live, whatever its colour (a switch: nothing starts). With
    VERSION: make live the colour that runs it, or release VERSION from the images kept on
    the engine, never building."""
    if version is not None:
        from deployer.core.versions import check_version

        check_version(version)
    window = watch_seconds(watch)
    from deployer.flows import back

    with context(config, env, check_paths=version is not None and not dry_run) as ctx:
        back.rollback(ctx, version, dry_run=dry_run, backup=backup, watch=window)


@app.command()
@handled
def status(
    config: ConfigOption = None,
    env: EnvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the live colour, each colour's release, health, memory and traffic, the edge, the database, the lock and the last releases."""
    with context(config, env, check_paths=False) as ctx:
        from deployer.flows.status import gather

        data = gather(ctx)
        data["environment"] = ctx.config.environment or None
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        from deployer.cli.render import status as render_status

        render_status(data)


@app.command()
@handled
def build(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The tag to build.")],
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Build and tag the image of every service that has a build context."""
    from deployer.core.versions import check_version

    check_version(version)
    from deployer.flows import images

    # A build needs the build contexts, not the secrets: CI builds without the env files.
    with context(config, env, check_paths=False) as ctx:
        from deployer.config.check import contexts

        for problem in contexts(ctx.config):
            raise problem
        for tag in images.build_all(
            ctx, version, progress=lambda s: say(f"building {s.image_ref(version)} from {s.build}")
        ):
            say(f"built {tag}")


@app.command()
@handled
def down(
    config: ConfigOption = None,
    env: EnvOption = None,
    volumes: Annotated[
        bool, typer.Option("--volumes", help="Also delete the database's and the edge's volumes (the dumps stay).")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help="With --volumes: do not ask for the project name (still asked for volumes not shown to be ours).",
        ),
    ] = False,
    backup: Annotated[
        bool, typer.Option("--backup/--no-backup", help="With --volumes: take a final verified dump first.")
    ] = True,
) -> None:
    """Remove every release and the infrastructure; with --volumes, the database too."""
    if not volumes and (yes or not backup):
        from deployer.errors import InputError

        raise InputError("down: --yes and --no-backup go with --volumes (without it, no data is deleted)")
    with context(config, env) as ctx:
        doubts = ctx.runtime.volume_doubts() if volumes else []
        if doubts or (volumes and not yes):  # volumes not shown to be ours: only a typed name vouches
            _confirm_deletion(ctx.config.name, ctx.engine.where, doubts)
        ctx.runtime.down(volumes=volumes, backup=backup, typed=bool(doubts))


def _confirm_deletion(name: str, where: str, doubts: list[str]) -> None:
    from deployer.errors import InputError

    if not sys.stdin.isatty():
        if doubts:
            from deployer.flows.volumes import refusal

            raise refusal(doubts)
        raise InputError("down --volumes deletes the database: add --yes to confirm (nothing was changed)")
    if doubts:
        say(f"{'; '.join(doubts)}: they cannot be shown to be this deployment's")
    what = "deletes these volumes" if doubts else "deletes the database"
    typed = typer.prompt(f"This {what} of {name!r} on {where}. Type the project name to confirm")
    if typed.strip() != name:
        raise InputError(f"{typed!r} is not {name!r}: nothing was changed")


def _register_groups() -> None:
    from deployer.cli.backup import app as backup_app
    from deployer.cli.config_group import app as config_app
    from deployer.cli.edge import app as edge_app
    from deployer.cli.lock import app as lock_app
    from deployer.cli.operate import exec as exec_command
    from deployer.cli.operate import logs
    from deployer.cli.page import page
    from deployer.cli.safety import register
    from deployer.cli.scaffold import init
    from deployer.cli.ship import promote, push
    from deployer.cli.top import top

    app.command()(init)
    app.command()(push)
    app.command()(promote)
    app.command()(logs)
    app.command("exec")(exec_command)
    app.command()(top)
    app.command()(page)
    app.add_typer(lock_app, name="lock")
    app.add_typer(backup_app, name="backup")
    app.add_typer(edge_app, name="edge")
    app.add_typer(config_app, name="config")
    register(app)  # watch, prune, maintenance


_register_groups()


def run() -> int:
    """Parse the command line and run the command; returns the exit code.

    Typer's own error handling (standalone mode) is off so that a usage error (a bad or
    missing option or argument, an unknown command) is one line on stderr like every other
    error, exit code 2. `--help`, `--version`, the help shown when a group gets no command,
    Ctrl-C (130) and typer.Exit keep typer's behaviour. Typer vendors its click: its usage
    errors are the classes of typer._click.exceptions, all of them typer.TyperException."""
    try:
        result = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `deployer`, `deployer backup`: the help, as before
        exc.show()
        return exc.exit_code
    except UsageError as exc:
        ctx = exc.ctx
        where = ctx.command_path if ctx is not None else "deployer"
        help_option = ctx.help_option_names[0] if ctx is not None and ctx.help_option_names else "--help"
        error(f"ERROR: {_one_line(_usage_message(exc))} (see {where} {help_option})")
        return exc.exit_code
    except typer.TyperException as exc:
        error(f"ERROR: {_one_line(exc.format_message())}")
        return exc.exit_code
    except typer.Abort:  # typer.prompt at end of input, as in standalone mode
        error("Aborted!")
        return 1
    # Without standalone mode typer returns the command's value (commands return None), or
    # the code of a typer.Exit (--help, --version, Ctrl-C while parsing: 130).
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _usage_message(exc: UsageError) -> str:
    """The message of a usage error. An unknown option is named as a command is ("No such
    option '--jsn'. Did you mean '--env', '--json'?"), not as typer's click words it ("No such
    option: --jsn (Possible options: --env, --json)")."""
    if isinstance(exc, NoSuchOption) and exc.message == f"No such option: {exc.option_name}":
        close = ", ".join(repr(name) for name in sorted(exc.possibilities or ()))
        return f"No such option {exc.option_name!r}." + (f" Did you mean {close}?" if close else "")
    return exc.format_message()


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
