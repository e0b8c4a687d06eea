"""The database is never restarted implicitly, and a release never starts with a login that
cannot connect.

- `deployer up` recreates a container when compose's hash of its settings changed (its
  image, env, limits, restart policy, ...). For the database that is a PostgreSQL restart
  under live traffic, so `up` asks compose for the database's new hash first and refuses
  (exit 2, nothing changed) when it differs from the running container's, naming what
  changed; `deployer up --recreate-db` takes a verified dump and then lets compose recreate
  it. The data stays in its volume either way. A release never touches the database's
  container at all.
- The release's `preflight` step tries each service's database login (services.*.db_login:
  the env file keys holding it) from the backup service, which sits on the data network
  with psql: a password that the database does not accept fails the release within
  seconds, before anything starts, instead of a health wait that times out.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import unquote, urlsplit

from deployer.adapters import compose as compose_adapter
from deployer.core import names
from deployer.core.masking import mask
from deployer.core.sql import passfile_field
from deployer.core.steps import Step
from deployer.errors import DeployerError, EngineError, InputError
from deployer.flows.context import Context

HASH_LABEL = "com.docker.compose.config-hash"


class LoginError(DeployerError):
    """A service's database login does not connect."""


# -- the recreate guard ---------------------------------------------------------------------------
def before_up(ctx: Context, data: dict[str, Any], secrets: dict[str, str], *, recreate: bool) -> bool:
    """Refuse an `up` that would recreate the database (unless `recreate`: then dump first).
    Returns whether compose may converge the database; False: it keeps running as it is, on
    its own db image built from the same files before (from an older base image, or before a
    `--refresh-images`), which only `--recreate-db` replaces."""
    engine, config = ctx.engine, ctx.config
    current = engine.inspect(names.infra_container(config.name, "db"))
    if config.database.external:  # no database container: an external server ([database] url_file)
        if current is not None:
            _leave_bundled(ctx, recreate=recreate)
        return False
    if current is None:
        return True
    have = ((current.get("Config") or {}).get("Labels") or {}).get(HASH_LABEL, "")
    want = compose_adapter.config_hash(engine, names.infra_project(config.name), data, "db", secrets=secrets)
    image = _plain(data["services"]["db"]["image"])
    rebuilt = current.get("Image") != engine.image_id(image)  # the same tag, another image: compose recreates too
    if (not have or have == want) and not rebuilt:
        if recreate:
            ctx.say("database: its settings are unchanged, so it is not recreated")
        return True
    if not want and not recreate:  # compose could not say: it might recreate it
        raise EngineError(
            "`docker compose config --hash` gave no answer, so `deployer up` cannot tell whether compose would "
            "recreate the database container (a PostgreSQL restart under live traffic): nothing was changed. Check "
            "`docker compose version` (compose v2), or run `deployer up --recreate-db`, which takes a verified dump first",
            step=Step.UP,
        )
    changed = _changes(ctx, current, data["services"]["db"], known=bool(want), rebuilt=rebuilt)
    if not recreate:
        if _newer_build_only(ctx, current, data, secrets, have):
            ctx.say(
                f"database: keeps running its image {(current.get('Config') or {}).get('Image')}; {image} is a newer "
                "build of it: `deployer up --recreate-db` moves the database to it, after a verified dump"
            )
            return False
        raise InputError(
            f"`deployer up` would recreate the database container, a PostgreSQL restart under live traffic, because "
            f"its {changed} changed: nothing was changed. Put the old settings back, or run `deployer up "
            "--recreate-db`, which takes a verified dump first (the data stays in its volume)"
        )
    from deployer.flows import backups

    ctx.say(f"database: its {changed} changed: dumping it before it is recreated")
    name = backups.take(ctx, label="before recreating the database", step=Step.UP)
    ctx.say(f"database: {name} written and verified; recreating the database container")
    return True


def _leave_bundled(ctx: Context, *, recreate: bool) -> None:
    """The config now names an external database, and the bundled one's container still exists:
    `up` removes that container (its volume stays) only when asked, after a verified dump of it
    (the backup agent still running is the one that reaches it)."""
    container = names.infra_container(ctx.config.name, "db")
    if not recreate:
        raise InputError(
            f"[database] url_file names an external database, and this deployment's database container {container} "
            "still exists: `deployer up` would remove it. Nothing was changed. Move the data first "
            '(docs/database.md, "Moving to an external database"), then run `deployer up --recreate-db`, which '
            "dumps it and removes the container (its volume stays)"
        )
    from deployer.flows import backups

    found = ctx.engine.container(container)
    if found is not None and found.running:
        ctx.say("database: the config names an external database: dumping the bundled one before its container goes")
        name = backups.take(ctx, label="before leaving the bundled database", step=Step.UP)
        ctx.say(f"database: {name} written and verified; the bundled database's container is removed, its volume kept")
    else:
        ctx.say("database: the bundled database's container is not running: it is removed, its volume kept")


def _changes(ctx: Context, current: dict[str, Any], spec: dict[str, Any], *, known: bool, rebuilt: bool) -> str:
    """What differs between the database container and its service, for the messages."""
    image = _plain(spec["image"])
    if rebuilt and (current.get("Config") or {}).get("Image") == image:
        now = (ctx.engine.image_id(image) or "")[7:19]
        return f"image ({image} was rebuilt: {current.get('Image', '')[7:19]} -> {now})"
    return what_changed(current, spec) if known else "settings (compose could not say)"


def _newer_build_only(ctx: Context, current: dict[str, Any], data: dict[str, Any], secrets, have: str) -> bool:
    """Only the image differs, and both are the deployer's own db image built from the same
    files (core/names.py LABEL_INPUTS): another base image, or a build without the cache."""
    from deployer.adapters import images
    from deployer.flows.images import OWN

    running = (current.get("Config") or {}).get("Image", "")
    labels = [
        ((images.image(ctx.engine, ref) or {}).get("Config") or {}).get("Labels") or {}
        for ref in (current.get("Image", ""), data["services"]["db"]["image"])
    ]
    inputs = labels[1].get(names.LABEL_INPUTS)
    # an image of an earlier deployer version has no labels: its tag is deployer-pgvector:<inputs>
    earlier = labels[0].get(names.LABEL_INPUTS) or running.removeprefix(f"{OWN['db']}:")
    if labels[1].get(names.LABEL_OWN) != "db" or not inputs or earlier != inputs:
        return False
    pinned = {**data, "services": {**data["services"], "db": {**data["services"]["db"], "image": running}}}
    project = names.infra_project(ctx.config.name)
    return compose_adapter.config_hash(ctx.engine, project, pinned, "db", secrets=secrets) == have


def what_changed(current: dict[str, Any], spec: dict[str, Any]) -> str:
    """Which of the database's settings differ between the container and the new compose
    service (names only: an env value may be a secret)."""
    conf, host = current.get("Config") or {}, current.get("HostConfig") or {}
    found = []
    if conf.get("Image") != _plain(spec.get("image")):
        found.append(f"image ({conf.get('Image')} -> {_plain(spec.get('image'))})")
    have = dict(e.split("=", 1) for e in conf.get("Env") or [] if "=" in e)
    want = {k: _plain(v) for k, v in (spec.get("environment") or {}).items()}
    keys = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k) and (k in want or not _image_env(k)))
    archiving = [k for k in keys if k.startswith("PGBACKREST_")]  # [backup] pitr, core/pitr.py
    if "PGBACKREST_STANZA" in archiving:
        turned = "on" if "PGBACKREST_STANZA" in want else "off"
        found.append(f"WAL archiving with pgBackRest ([backup] pitr) is turned {turned}, so its command line")
    elif archiving:
        found.append("pgBackRest settings ([backup] pitr_full_keep, [backup.sftp] or [backup.s3])")
    if keys := [k for k in keys if k not in archiving]:
        found.append(f"environment ({', '.join(keys)})")
    limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    cpus = round(float(limits["cpus"]) * 1e9) if limits.get("cpus") else 0
    if int(host.get("NanoCpus") or 0) != cpus:
        found.append("cpus limit")
    if bool(host.get("Memory")) != bool(limits.get("memory")):
        found.append("memory limit")
    if (host.get("RestartPolicy") or {}).get("Name", "no") != spec.get("restart", "no"):
        found.append("restart policy")
    return ", ".join(found) or "settings (volumes, networks, secrets or labels)"


def _plain(value: Any) -> Any:
    """A compose file's value without its $-escaping."""
    return value.replace("$$", "$") if isinstance(value, str) else value


def _image_env(key: str) -> bool:
    """Variables the image itself sets (not in the compose file, but in the container)."""
    return key in ("PATH", "LANG", "PG_MAJOR", "PGDATA", "GOSU_VERSION", "PG_VERSION") or key.startswith("LC_")


# -- the login preflight ------------------------------------------------------------------------
def preflight(ctx: Context, env: dict[str, dict[str, str]]) -> None:
    """Each services.*.db_login must connect to the database, or the release stops here.
    `env`: the services' env files as the release read them."""
    config = ctx.config
    logins = [s for s in config.services.values() if s.db_login]
    if not logins and not config.database.external:
        return
    container = names.infra_container(config.name, "backup")
    found = ctx.engine.container(container)
    if found is None or not found.running:
        ctx.say("preflight: the backup service is not running, so the database logins are not checked")
        return
    host, port, sslmode = "db", 5432, ""
    if config.database.external:
        server = external_server(ctx, step=Step.PREFLIGHT)
        host, port, sslmode = server["host"], int(server["port"]), server.get("sslmode", "")
    for s in logins:
        user, password, database, keys = _login(s, env.get(s.name, {}), config.database.name)
        # The password goes in a PGPASSFILE, written through the Engine API's archive upload
        # (root's, 0600, in a folder of its own that the same exec removes): never in the
        # exec's environment or argv, which the engine's debug log and /proc would show.
        name = f"deployer-preflight-{secrets.token_hex(8)}"
        folder = f"/tmp/{name}"
        ctx.engine.put_files(
            container, "/tmp", {f"{name}/pgpass": _passfile(user, password, database)}, step=Step.PREFLIGHT
        )
        result = ctx.engine.exec(
            container,
            ["sh", "-c", _PSQL, "preflight", folder],
            step=Step.PREFLIGHT,
            env={
                "PGHOST": host,
                "PGPORT": str(port),
                **({"PGSSLMODE": sslmode} if sslmode else {}),
                "PGUSER": user,
                "PGPASSFILE": f"{folder}/pgpass",
                "PGDATABASE": database,
                "PGCONNECT_TIMEOUT": "5",
                "PGAPPNAME": "deployer-preflight",
            },
        )
        if not result.ok:
            # libpq's last line names the password file ("password retrieved from file ..."): not the reason
            lines = [x for x in (result.stderr or result.stdout).strip().splitlines() if "retrieved from file" not in x]
            why = mask(lines[-1].removeprefix("psql: error: ")) if lines else "no answer"
            raise LoginError(
                f"the database login of {s.name} ({keys} in {s.env_file}) does not connect to database "
                f"{database!r}: {why}. Nothing was started; fix the env file (or the database's password) first",
                step=Step.PREFLIGHT,
            )
    if logins:
        ctx.say(f"preflight: the database login of {', '.join(s.name for s in logins)} connects")


def external_server(ctx: Context, *, step: str) -> dict[str, str]:
    """[database] url_file: the external database answers the deployer's own login, and has
    pgvector (installed, or installable by a migration). Raises LoginError, naming the server."""
    from deployer.flows import agent_call

    try:
        server = agent_call.ask(ctx, "server", "--step", step, step=step)
    except DeployerError as exc:
        raise LoginError(
            f"the external database ([database] url_file) does not answer the deployer's login: {exc}. Nothing "
            "was started",
            step=step,
        ) from None
    if server.get("pgvector") == "none":
        raise LoginError(
            f"the external database at {server.get('where')} (PostgreSQL {server.get('server')}) cannot install "
            "pgvector (no extension `vector` among its available extensions): install it on that server first. "
            "Nothing was started",
            step=step,
        )
    ctx.say(
        f"preflight: the external database at {server.get('where')} answers (PostgreSQL {server.get('server')}, "
        f"pgvector {server.get('pgvector')})"
    )
    return server


def login_rotated(ctx: Context, password: str) -> bool:
    """The external database's password in url_file is not the one the running backup agent
    was given (a rotation): compose sees no secret's content, so `up` makes the agent again.
    Only digests are compared: the password itself never leaves the container."""
    import hashlib

    container = names.infra_container(ctx.config.name, "backup")
    found = ctx.engine.container(container)
    if found is None or not found.running:
        return False
    result = ctx.engine.exec(container, ["sha256sum", "/run/secrets/db_password"], step=Step.UP)
    if not result.ok or hashlib.sha256(password.encode()).hexdigest() == result.stdout.split(" ")[0]:
        return False
    ctx.say("backup agent: the external database's password changed in url_file: the agent is made again with it")
    return True


# psql with the passfile, then the folder removed, whatever psql's outcome; psql's exit code.
_PSQL = 'psql -w -X -At -c "select 1"; code=$?; rm -rf "$1"; exit $code'


def _passfile(user: str, password: str, database: str) -> bytes:
    fields = (passfile_field(v) for v in (database, user, password))
    return ("*:*:" + ":".join(fields) + "\n").encode()


def _login(service, values: dict[str, str], default_db: str) -> tuple[str, str, str, str]:
    """(user, password, database, the keys named) from the service's env file."""
    login = service.db_login
    if login.url:
        parts = urlsplit(values.get(login.url, ""))
        database = unquote(parts.path.lstrip("/")) or default_db
        return unquote(parts.username or ""), unquote(parts.password or ""), database, login.url
    return values.get(login.user, ""), values.get(login.password, ""), default_db, f"{login.user}/{login.password}"
