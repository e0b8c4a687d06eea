"""Compose files as data: one release of a colour, and the infrastructure.

Pure: the flows hand the result to docker compose as a JSON file. Compose interpolates
`$` in every string of a compose file, so every value we write is escaped (`$$`), and
no value can reach another key: this is data, not a template.

Secrets never appear here. A secret travels as a compose secret whose value compose
reads from its own environment (set by the engine adapter for that one call) and copies
into the container as a file under /run/secrets: it is in neither `docker inspect` nor
any argv.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from deployer.core import names, pitr
from deployer.core import volumes as ownership
from deployer.core.edgelayout import HTTPS_PORT, MOUNT, PREVIEW_PORT, PUBLIC_PORT

SECRET_ENV_PREFIX = "DEPLOYER_SECRET_"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Container logs are rotated, so that nothing grows without end on the host's disk.
LOGGING = {"driver": "json-file", "options": {"max-size": "50m", "max-file": "5"}}
# The edge writes a JSON line per request (about 210 bytes). Docker's `local` driver
# stores a line for about two thirds of json-file's CPU (1.9 against 2.9 us measured on
# this machine), and `docker logs` reads it the same way. Not compressed on rotation: that
# would cost CPU in bursts under load.
EDGE_LOGGING = {"driver": "local", "options": {**LOGGING["options"], "compress": "false"}}
EDGE_TEMP = "/var/lib/nginx"  # where the edge's nginx keeps its temporary files
EDGE_SPEC = "deployer.edge-spec"  # the label that says what the edge container was made from
# The connections queued on a closing listener go to another listener of its port (the new
# edge's), not reset: the replaced edge's SIGQUIT refuses no connection (Linux 5.14 and later).
MIGRATE_REQUESTS = {"net.ipv4.tcp_migrate_req": "1"}


def escape(value: Any) -> Any:
    """Escape compose interpolation in every string of a structure."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {escape(k): escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value


def _limits(limits) -> dict[str, Any]:
    resources = {}
    if limits.cpus is not None:
        resources["cpus"] = f"{limits.cpus:g}"
    if limits.memory is not None:
        resources["memory"] = limits.memory
    return {"deploy": {"resources": {"limits": resources}}} if resources else {}


def _networks(project: str) -> dict[str, Any]:
    return {
        "edge": {"external": True, "name": names.edge_network(project)},
        "data": {"external": True, "name": names.data_network(project)},
    }


def release(
    config,
    colour: str,
    release_id: str,
    version: str,
    deployment: str = "",
    env: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Every service of one release of a colour, started and stopped together.

    Each service answers on the edge network to <service>-<colour>-<release id>, a name
    no other container ever had, and learns its siblings' addresses as <SERVICE>_URL.
    `env` holds each service's env file, as read by the deployer: its values are data
    (taken literally, never interpolated), except the keys in the service's `secrets`,
    which become files under /run/secrets (see `release_secrets`).
    """
    project = config.name
    siblings = {
        f"{names.env_name(s.name)}_URL": f"http://{names.service_host(s.name, colour, release_id)}:{s.port}"
        for s in config.services.values()
    }
    services: dict[str, Any] = {}
    for s in config.services.values():
        spec: dict[str, Any] = {
            "image": s.image_ref(version),
            "environment": {
                "APP_VERSION": version,
                "APP_COLOUR": colour,
                "APP_RELEASE": release_id,
                "APP_SERVICE": s.name,
                "PORT": str(s.port),
                "HOSTNAME": "0.0.0.0",
                **siblings,
            },
            "labels": {
                names.LABEL_PROJECT: project,
                names.LABEL_DEPLOYMENT: deployment,
                names.LABEL_ROLE: "app",
                names.LABEL_COLOUR: colour,
                names.LABEL_VERSION: version,
                names.LABEL_RELEASE: release_id,
                names.LABEL_SERVICE: s.name,
                names.LABEL_PORT: str(s.port),
            },
            "restart": config.restart,
            "logging": LOGGING,
            "stop_grace_period": f"{s.stop_grace}s",
            "networks": {"edge": {"aliases": [names.service_host(s.name, colour, release_id)]}, "data": {}},
            **_limits(s.limits),
        }
        own = (env or {}).get(s.name, {})
        spec["environment"] = {
            **{k: v for k, v in own.items() if k not in s.secrets},
            **spec["environment"],
            # NAME_FILE, the convention of many images, where NAME can be a variable
            **{f"{k}_FILE": f"/run/secrets/{k}" for k in s.secrets if IDENTIFIER.fullmatch(k)},
        }
        if s.secrets:
            spec["secrets"] = [
                {"source": _secret_name(s.name, i), "target": k, "mode": 0o444} for i, k in enumerate(s.secrets)
            ]
        services[s.name] = spec
    secrets = {
        _secret_name(s.name, i): {"environment": _secret_env(s.name, i)}
        for s in config.services.values()
        for i in range(len(s.secrets))
    }
    return escape({"services": services, "networks": _networks(project), **({"secrets": secrets} if secrets else {})})


def _secret_name(service: str, index: int) -> str:
    return f"{service}-secret-{index}"


def _secret_env(service: str, index: int) -> str:
    return f"{SECRET_ENV_PREFIX}{names.env_name(service)}_{index}"


def release_secrets(config, env: dict[str, dict[str, str]]) -> dict[str, str]:
    """The values of every service's secrets, by the environment variable compose reads
    them from (set for the one compose call that starts the release). A secret's file is
    named after its key: /run/secrets/spring.datasource.password is the property
    spring.datasource.password to Spring Boot's `configtree:` import."""
    return {
        _secret_env(s.name, i): env.get(s.name, {}).get(k, "")
        for s in config.services.values()
        for i, k in enumerate(s.secrets)
    }


def _port(bind: str, published: int, target: int) -> dict[str, Any]:
    port: dict[str, Any] = {"target": target, "host_ip": bind, "protocol": "tcp"}
    if published:
        port["published"] = str(published)
    return port


def _edge_ports(edge) -> list[dict[str, Any]]:
    ports = [
        _port(edge.public_bind, edge.public_port, PUBLIC_PORT),
        _port("127.0.0.1", edge.preview_port, PREVIEW_PORT),
    ]
    if edge.tls:
        ports.insert(1, _port(edge.public_bind, edge.tls.port, HTTPS_PORT))
    return ports


def edge_temp(edge) -> dict[str, Any]:
    """nginx's temporary files (the request bodies being received, and every other temp path
    of Debian's nginx, all under /var/lib/nginx) on a tmpfs of edge.temp_size: a flood of
    uploads takes at most that much memory, and never the disk the database lives on."""
    return {"type": "tmpfs", "target": EDGE_TEMP, "tmpfs": {"size": edge.temp_size}}


def _acme_mount(folder: str | None) -> list[dict[str, Any]]:
    if not folder:
        return []
    return [
        {"type": "bind", "source": folder, "target": "/srv/acme", "read_only": True, "bind": {"create_host_path": True}}
    ]


def _ports_holder(config, labels: dict[str, str], image: str, sysctls: dict[str, str] | None) -> dict[str, Any]:
    """The edge's network namespace and published ports (and their sysctls)."""
    return {
        "image": image,
        "command": ["sleep", "infinity"],
        "init": True,  # passes SIGTERM on to sleep
        "ports": _edge_ports(config.edge),
        # the names the edge container had on its network, for whatever reaches it by them
        "networks": {"edge": {"aliases": ["edge", names.infra_container(config.name, "edge")]}},
        **({"sysctls": sysctls} if sysctls else {}),
        "labels": labels,
        "restart": config.restart,
        "logging": LOGGING,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "stop_grace_period": "2s",
    }


def _spec_hash(service: dict[str, Any], image_id: str) -> str:
    """What makes a new edge container: its compose service and its image's ID. Compare with
    the EDGE_SPEC label of the running edge (compose's own hash names the ports container's ID)."""
    text = json.dumps({"service": service, "image": image_id}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _backup_health() -> dict[str, Any]:
    """Unhealthy once the schedule's deadline has passed (deployer/agent/health.py judges it
    from the dumps on disk). Checked every 5 s (a Python start each time); `up` asks it once
    itself rather than wait for the first check (flows/agent_call.py)."""
    return {
        "test": ["CMD", "python3", "-m", "deployer.agent", "health"],
        "interval": "5s",
        "timeout": "30s",
        "retries": 2,
        "start_period": "0s",
    }


def infra(
    config,
    *,
    edge_image: str,
    db_image: str,
    backup_image: str,
    db_env: dict[str, str],
    agent_config: str,
    deployment: str = "",
    dumps_on_host: str | None = None,
    edge_sysctls: dict[str, str] | None = None,
    acme_on_host: str | None = None,
    ports_image: str = "none",
    edge_image_id: str = "",
    migrate_requests: bool = True,
) -> dict[str, Any]:
    """The edge, the database and the backup service (compose project <name>-infra); no
    database with an external one ([database] url_file).

    `db_env` holds the database env file's values except the password, which is a secret
    (POSTGRES_PASSWORD_FILE). `dumps_on_host` is a folder of the Docker host for the dumps;
    None keeps them in the volume <name>-dumps. `acme_on_host` is the Docker host's folder
    of ACME HTTP-01 challenges (edge.acme_webroot), mounted read-only into the edge.

    The edge's published ports and network belong to `ports`, a container that only sleeps
    and is never replaced (`ports_image`: an image ID, so that a newer base image does not
    replace it): the edge's nginx joins its network namespace, so that a new edge can listen
    on the same ports beside the old one (SO_REUSEPORT) while the old one drains
    (flows/edge_roll.py). `edge_image_id` goes into the edge's EDGE_SPEC label.
    `migrate_requests`: the host's kernel has net.ipv4.tcp_migrate_req (Linux 5.14 and later).
    """
    project = config.name

    def labels(role: str) -> dict[str, str]:
        return {names.LABEL_PROJECT: project, names.LABEL_DEPLOYMENT: deployment, names.LABEL_ROLE: role}

    dumps = dumps_on_host or "dumps"
    services = {
        "ports": _ports_holder(
            config,
            labels("ports"),
            ports_image,
            {**MIGRATE_REQUESTS, **(edge_sysctls or {})} if migrate_requests else edge_sysctls,
        ),
        "edge": {
            "image": edge_image,
            "network_mode": "service:ports",
            "volumes": [MOUNT, *_acme_mount(acme_on_host), edge_temp(config.edge)],
            "labels": labels("edge"),
            "restart": config.restart,
            "logging": EDGE_LOGGING,
        },
        "db": {
            "image": db_image,
            "environment": {
                **{k: v for k, v in db_env.items() if k != "POSTGRES_PASSWORD"},
                "POSTGRES_DB": config.database.name,
                "PGDATA": "/var/lib/postgresql/data/pgdata",
                "POSTGRES_PASSWORD_FILE": "/run/secrets/db_password",
            },
            "secrets": [{"source": "db_password", "target": "db_password", "mode": 0o400}],
            "volumes": ["db-data:/var/lib/postgresql/data"],
            "networks": {"data": {"aliases": ["db"]}},
            "shm_size": "256m",
            "stop_grace_period": "60s",
            "labels": labels("db"),
            "restart": config.restart,
            "logging": LOGGING,
            **_limits(config.database.limits),
        },
        # The backup agent (deployer/agent): starts as root only to own /backups and read
        # its secrets, then drops to uid 10001; holds no capability beyond those steps.
        "backup": {
            "image": backup_image,
            "command": ["schedule"],
            "configs": [{"source": "agent", "target": "/etc/deployer/agent.json", "mode": 0o444}],
            "secrets": [
                {"source": "db_password", "target": "db_password", "mode": 0o400},
                {"source": "webhook", "target": "webhook", "mode": 0o400},
            ],
            "volumes": [f"{dumps}:/backups"],
            "networks": ["data", "edge"] if config.backup.webhook else ["data"],
            "healthcheck": _backup_health(),
            "init": True,  # reaps what a killed agent command leaves running
            "cap_drop": ["ALL"],
            # own /backups, read the secrets, drop to 10001; KILL lets init pass SIGTERM on to it
            "cap_add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"],
            "security_opt": ["no-new-privileges:true"],
            "stop_grace_period": "10s",
            # compose recreates a container when its service changes, not when a config's
            # content does: the settings' hash (they hold no secret) makes it change.
            "labels": {
                **labels("backup"),
                "deployer.agent-settings": hashlib.sha256(agent_config.encode()).hexdigest()[:16],
            },
            "restart": config.restart,
            "logging": LOGGING,
        },
    }
    services["edge"]["labels"][EDGE_SPEC] = _spec_hash(services["edge"], edge_image_id)
    # External: made labelled by the deployer (flows/volumes.py): compose would recreate one whose labels change.
    external_db = config.database.external
    if external_db:
        # No database container: the backup agent reaches the external server over the edge
        # network, which (unlike the internal data network) has a route out.
        del services["db"]
        services["backup"]["networks"] = ["edge"]
    pitr_on = config.backup.pitr and not external_db  # WAL archived with pgBackRest (core/pitr.py)
    volumes = ownership.volumes(project, dumps_on_host, db=not external_db, pitr=pitr_on)
    secrets = {"db_password": "DB_PASSWORD", "webhook": "WEBHOOK"}
    doc = {
        "services": services,
        "volumes": {k: {"name": name, "external": True} for k, name in volumes.items()},
        "networks": _networks(project),
        "secrets": {k: {"environment": f"{SECRET_ENV_PREFIX}{v}"} for k, v in secrets.items()},
        "configs": {"agent": {"content": agent_config}},
    }
    if pitr_on:
        pitr.apply(doc, config.backup, db_env.get("POSTGRES_USER", "postgres"), project, SECRET_ENV_PREFIX)
    return escape(doc)
