"""`deployer up` and `deployer down`: networks, the edge, the database and the backup
service (compose project <name>-infra). Neither touches a release.

`up` assumes nothing about the machine it runs on: images are built on the engine, the
database password reaches the containers as a compose secret, the backup service's
settings as a compose config, and the dumps stay on the Docker host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployer.adapters import compose as compose_adapter
from deployer.adapters import oneoff
from deployer.adapters.lifecycle import kernel
from deployer.assets import asset
from deployer.config import envfile
from deployer.config.data import read_url
from deployer.core import agentconfig, compose, edgelayout, names, oneoffs, site
from deployer.core.state import Record, Target
from deployer.core.steps import Step
from deployer.errors import ConfigError, EngineError, InputError
from deployer.flows import agent_call, dbguard, edge_roll, images, pitr, tls
from deployer.flows import volumes as ownership
from deployer.flows.context import Context, host_folder
from deployer.flows.lock import held
from deployer.flows.oneoffs import clear, oneoff_labels

SECRET_DB_PASSWORD = f"{compose.SECRET_ENV_PREFIX}DB_PASSWORD"
SECRET_WEBHOOK = f"{compose.SECRET_ENV_PREFIX}WEBHOOK"


def dumps_on_host(ctx: Context) -> str | None:
    """The host folder of the dumps (None: the dumps volume)."""
    return host_folder(ctx, ctx.config.backup.dir, "backup.dir")


def spec(
    ctx: Context,
    *,
    edge_image: str = "none",
    db_image: str = "none",
    backup_image: str = "none",
    ports_image: str = "none",
    edge_image_id: str = "",
    migrate_requests: bool = True,
) -> tuple[dict, dict]:
    """(compose file, secrets) of the infrastructure (core/compose.py infra says what each is)."""
    config = ctx.config
    db_env, url = db_login(config)
    agent = agentconfig.for_config(config, db_env.get("POSTGRES_USER", "postgres"), url)
    data = compose.infra(
        config,
        edge_image=edge_image,
        db_image=db_image,
        backup_image=backup_image,
        db_env=db_env,
        agent_config=agent.render(),
        deployment=config.deployment,
        dumps_on_host=dumps_on_host(ctx),
        edge_sysctls=_test_sysctls(),
        acme_on_host=tls.acme_on_host(ctx),
        ports_image=ports_image,
        edge_image_id=edge_image_id,
        migrate_requests=migrate_requests,
    )
    secrets = {SECRET_DB_PASSWORD: db_env.get("POSTGRES_PASSWORD", ""), SECRET_WEBHOOK: config.backup.webhook or ""}
    return data, {**secrets, **pitr.compose_secrets(ctx, compose.SECRET_ENV_PREFIX)}


def db_login(config) -> tuple[dict[str, str], Any]:
    """(the database env file's values, None) for the bundled database; for an external one
    ([database] url_file), (its user and password as POSTGRES_USER/POSTGRES_PASSWORD, its URL)."""
    if config.database.external:
        url = read_url(config.database.url_file, where=config.path)
        return {"POSTGRES_USER": url.user, "POSTGRES_PASSWORD": url.password}, url
    return envfile.read(config.database.env_file, where=config.path, key="database.env_file").values, None


def _test_sysctls() -> dict[str, str] | None:
    """A test harness hook, not a user option: DEPLOYER_TEST_EDGE_PORT_RANGE="61000 61300"
    shrinks the edge's local port range, so that a proxy that does not pool its upstream
    connections runs out of ports within seconds."""
    import os

    value = os.environ.get("DEPLOYER_TEST_EDGE_PORT_RANGE")
    return {"net.ipv4.ip_local_port_range": value} if value else None


def template(ctx: Context) -> Path:
    return ctx.config.edge.template or asset("edge", "site.conf.j2")


def check_owner(ctx: Context) -> bool:
    """Refuse (exit 2) a deployment of this name that another config created. True when its
    edge exists."""
    owner = ctx.edge.owner()
    if owner is not None and owner != ctx.config.deployment:
        raise InputError(
            f"the deployment {ctx.config.name!r} on {ctx.engine.where} was created from another config "
            f"(id {owner or 'none'!r}; this config's project.id is {ctx.config.deployment or 'not set'!r}): "
            "nothing was changed. If it is the same deployment, give this config that id; if not, "
            "give it another project.name"
        )
    return owner is not None


def render_site(ctx: Context) -> str:
    """The edge's site, rendered from its template; a template that does not render is bad input."""
    import jinja2

    try:
        return site.render(ctx.config, template(ctx))
    except (jinja2.TemplateError, OSError) as exc:
        key = "edge.template" if ctx.config.edge.template else "edge"
        raise ConfigError(ctx.config.path, key, f"the site template does not render: {exc}") from None


def check_site(ctx: Context, rendered: str, edge_image: str) -> None:
    """`nginx -t` the rendered site in a throwaway edge container, before the real edge sees it."""
    import base64
    import secrets

    script = (
        f'printf %s "$SITE" | base64 -d > {edgelayout.SITE}.new'
        f" && /usr/local/bin/edge-entrypoint nginx -t -q -c {edgelayout.CANDIDATE}"
    )
    result = oneoff.run_once(
        ctx.engine,
        edge_image,
        ["sh", "-c", script],
        step=Step.UP,
        name=f"{ctx.config.name}-site-check-{secrets.token_hex(4)}",
        labels=oneoff_labels(ctx, oneoffs.SITE_CHECK, command="up", timeout=ctx.engine.timeout),
        environment={"SITE": base64.b64encode(rendered.encode()).decode()},
    )
    if not result.ok:
        key = "edge.template" if ctx.config.edge.template else "edge"
        lines = [
            line for line in result.stdout.splitlines() if "emerg" in line or "error" in line
        ] or result.stdout.splitlines()
        raise ConfigError(ctx.config.path, key, f"nginx -t rejects the rendered site: {' '.join(lines[-2:]).strip()}")


def up(ctx: Context, *, recreate_db: bool = False, refresh: bool = False) -> None:
    """Idempotent: creates what is missing, changes only what differs, never touches a release.
    Never recreates the database implicitly: see flows/dbguard.py (`recreate_db` dumps first).
    An edge to change is replaced with no failed request (flows/edge_roll.py). `refresh`
    builds the deployer's own images again without the build cache (flows/images.py)."""
    config, engine, say = ctx.config, ctx.engine, ctx.say
    rendered = render_site(ctx)
    tls.refuse_out_of_date(ctx)
    check_owner(ctx)
    edge_roll.settle(ctx)  # what a killed replacement left (first: the lock is taken in the named edge)
    with held(ctx, "up"):
        # What killed commands left: a migration that still runs is waited for only when the
        # database may be recreated (an `up` that brings a failed edge back must not wait).
        clear(ctx, wait_for=(oneoffs.MIGRATE,) if recreate_db else ())
        # Everything that can refuse comes first (the site's `nginx -t`, the database image), so
        # a refusal leaves nothing behind, not even the networks.
        external = config.database.external
        say(
            f"images: edge, {'' if external else 'database and '}backup agent on {engine.where}"
            + (", without the cache" if refresh else "")
        )
        base = config.base_image
        fresh = images.fresh_token() if refresh else ""
        if refresh:
            images.pull_base(engine, base, say, step=Step.UP)
        edge_image = images.own_image(engine, "edge", base_image=base, say=say, fresh=fresh)
        check_site(ctx, rendered, edge_image)
        if external:
            db_image = "none"  # no database container (compose.infra leaves it out)
        elif config.database.image:
            db_image = config.database.image
            if not engine.image_id(db_image):
                raise EngineError(f"database image {db_image} does not exist on {engine.where}", step=Step.UP)
        else:
            db_image = images.own_image(engine, "db", base_image=base, say=say, fresh=fresh)
        backup_image = images.own_image(engine, "agent", base_image=base, say=say, fresh=fresh)
        edge_id = engine.image_id(edge_image) or ""
        data, secrets = spec(
            ctx, edge_image=edge_image, db_image=db_image, backup_image=backup_image,
            ports_image=edge_roll.ports_image(ctx, edge_id), edge_image_id=edge_id,
            migrate_requests=kernel(engine) >= (5, 14),  # the sysctl's first kernel
        )  # fmt: skip
        shape = edge_roll.layout(ctx)
        if shape == "pod" and not edge_roll.running(ctx):
            shape = "none"  # an edge that is down (killed, or its port was taken) has no traffic to keep: start it
        replacing = shape == "pod" and edge_roll.stale(ctx, data)
        if replacing:
            edge_roll.check(ctx, rendered)  # refuses a site without reuseport, and a running watch
        pitr.probe(ctx)  # the pgBackRest repository off the host answers (exit 2 otherwise)
        with_db = dbguard.before_up(ctx, data, secrets, recreate=recreate_db)  # refuses, keeps or dumps first
        networks = [(names.edge_network(config.name), False), (names.data_network(config.name), True)]
        if "backup-out" in data.get("networks", {}):  # a route out to the pgBackRest repository off the host
            networks.append((data["networks"]["backup-out"]["name"], False))
        for name, internal in networks:
            engine.ensure_network(name, internal=internal, labels={names.LABEL_PROJECT: config.name}, step=Step.UP)
        ownership.create(ctx, data, step=Step.UP)  # labelled: whose they are (flows/volumes.py)
        _converge(ctx, data, secrets, shape=shape, replacing=replacing, with_db=with_db, site=rendered)
        if config.backup.pitr and not external:  # the pgBackRest stanza, and a first full backup
            say(f"point-in-time recovery: {pitr.setup(ctx) or 'WAL archived continuously'}")
        ctx.edge.mark_deployment(step=Step.UP)
        if ctx.edge.apply_site(rendered, step=Step.UP):
            say("edge: site config applied and reloaded")
        if config.edge.tls:  # after the site, whose control socket takes it
            say(f"edge: certificate installed: {tls.install(ctx, step=Step.UP)}")
        adopted = adopt_releases(ctx)
        if adopted:
            say(f"edge: route state rebuilt from the running releases: {', '.join(adopted)}")
        if refresh:
            images.drop_replaced(engine)
    live, preview = ctx.edge.published_port(edgelayout.PUBLIC_PORT), ctx.edge.published_port(edgelayout.PREVIEW_PORT)
    https = f", HTTPS port {ctx.edge.published_port(edgelayout.HTTPS_PORT)}" if config.edge.tls else ""
    say(f"edge: live port {live}{https}, preview port {preview} (127.0.0.1 only) on {engine.where}")


def _converge(
    ctx: Context, data: dict, secrets: dict, *, shape: str, replacing: bool, with_db: bool, site: str
) -> None:
    """compose up of the infrastructure; an edge to change is replaced beside the running one
    (a ports change restarts it with its ports holder; an edge of the earlier layout moves)."""
    project = names.infra_project(ctx.config.name)
    services = ["ports"] + (["db"] if with_db else [])
    rotated = ctx.config.database.external and dbguard.login_rotated(ctx, secrets[SECRET_DB_PASSWORD])

    def compose_up(extra: list[str]) -> None:
        # The backup agent starts first, unwaited; then the rest, waited for healthy; then the
        # agent is asked its health once (its container's first check comes 5 s after start).
        try:
            compose_adapter.up(
                ctx.engine, project, data, step=Step.UP, secrets=secrets, services=["backup"], recreate=rotated
            )
            compose_adapter.up(
                ctx.engine, project, data, step=Step.UP, secrets=secrets, wait=True, services=services + extra
            )
        except EngineError as exc:
            raise busy_port_error(ctx, exc) or exc from None
        agent_call.healthy(ctx, Step.UP)

    if shape == "single":
        edge_roll.move(ctx, lambda: compose_up(["edge"]))
    elif shape == "pod" and edge_roll.ports_changed(ctx, data, secrets):
        ctx.say("edge: its ports changed, so it restarts with its ports holder: new connections wait or are refused")
        compose_up(["edge"])
    else:
        compose_up(["edge"] if shape == "none" else [])
        if replacing:
            edge_roll.replace(ctx, data, secrets, rendered=site)
    # compose names a container it recreates after its number (<name>-infra-edge-2 after a
    # replacement): the edge's name goes back to it
    edge_roll.settle(ctx)


def busy_port_error(ctx: Context, exc: EngineError) -> EngineError | None:
    """When `up` failed because a port the edge publishes is taken: which one, and its key."""
    port = compose_adapter.busy_port(exc.stderr)
    if port is None:
        return None
    edge = ctx.config.edge
    keys = {edge.public_port: "edge.public_port", edge.preview_port: "edge.preview_port"}
    if edge.tls:
        keys[edge.tls.port] = "edge.tls.port"
    key = keys.get(port, "the edge's ports")
    return EngineError(
        f"port {port} is already in use on the Docker host ({ctx.engine.where}), by another program or container: "
        f"free it, or set another {key}",
        step=Step.UP,
        logs=exc.logs,
        command=exc.command,
        exit_code=exc.status,
        stderr=exc.stderr,
    )


def adopt_releases(ctx: Context) -> list[str]:
    """Write the route state of a colour that has running releases but none in its state
    (an edge from before per-colour route state, or a lost volume): its newest release
    whose every service runs, rebuilt from the containers' labels."""
    state = ctx.edge.state(step=Step.UP)
    containers = ctx.engine.containers(ctx.config.name, deployment=ctx.config.deployment, role="app")
    adopted = []
    for colour in names.COLOURS:
        if state.record(colour):
            continue
        by_release: dict[str, list] = {}
        for c in containers:
            if c.colour == colour and c.running:
                by_release.setdefault(c.release, []).append(c)
        if not by_release:
            continue
        release_id, group = max(by_release.items(), key=lambda item: max(c.started_at for c in item[1]))
        targets = tuple(
            Target(
                c.service,
                names.service_host(c.service, colour, release_id),
                int(c.labels.get(names.LABEL_PORT) or ctx.config.services[c.service].port),
                ctx.config.services[c.service].health if c.service in ctx.config.services else "/",
            )
            for c in sorted(group, key=lambda c: c.service)
        )
        routes = tuple(
            (p, t.service)
            for t in targets
            if t.service in ctx.config.services
            for p in ctx.config.services[t.service].routes
        )
        inflight = tuple(
            (t.service, ctx.config.services[t.service].max_in_flight)
            for t in targets
            if t.service in ctx.config.services and ctx.config.services[t.service].max_in_flight
        )
        strip = tuple(
            t.service
            for t in targets
            if t.service in ctx.config.services and ctx.config.services[t.service].strip_prefix
        )
        record = Record(colour, release_id, group[0].version, targets, routes, inflight, strip)
        ctx.edge.write_record(colour, record, step=Step.UP)
        adopted.append(f"{colour} {group[0].version}")
    return adopted
