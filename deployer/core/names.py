"""Every name the deployer gives to what it creates, and the labels it reads back.

A deployment is `project.name`: its compose projects, containers, networks and volumes
all start with it. The labels are how the host tells the truth about what runs.
"""

from __future__ import annotations

import re

# The grammar of what names a release: its colour, its id and its services' names. The
# edge's Lua (assets/edge/lua/deployer/state.lua) and shell scripts are held to these by
# tests/unit/test_edge_grammar.py; the site template gets them when it is rendered.
COLOURS = ("blue", "green")
RELEASE_ID = re.compile(r"[0-9a-f]{8}")  # new_release_id
SERVICE_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?")  # 1-24 characters
# An engine over ssh, as engine.host and DOCKER_HOST may name it (no password: ssh keys).
SSH_HOST = re.compile(r"ssh://(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*(?::([0-9]{1,5}))?")

LABEL_PROJECT = "deployer.project"
LABEL_DEPLOYMENT = "deployer.deployment"
LABEL_ROLE = "deployer.role"  # edge, db, backup, app, control, oneoff
LABEL_COLOUR = "deployer.colour"
LABEL_VERSION = "deployer.version"
LABEL_RELEASE = "deployer.release"
LABEL_SERVICE = "deployer.service"
LABEL_PORT = "deployer.port"
# On the deployer's own images (edge, db, agent): what each was built from (flows/images.py).
LABEL_OWN = "deployer.own"
LABEL_INPUTS = "deployer.inputs"  # the hash of the package files it is built from
LABEL_BASE = "deployer.base"  # the base image's reference (project.base_image)
LABEL_BASE_ID = "deployer.base-id"  # and its image ID on the engine at the build
# A one-off container (role oneoff: core/oneoffs.py): its kind, who started it, and the
# seconds its own command gives it before stopping it.
LABEL_KIND = "deployer.kind"
LABEL_BY = "deployer.by"
LABEL_TIMEOUT = "deployer.timeout"


def new_release_id() -> str:
    import secrets  # here: a switch, which makes no release, does not pay for it

    return secrets.token_hex(4)


def other(colour: str) -> str:
    return COLOURS[1 - COLOURS.index(colour)]


def release_project(project: str, colour: str, release_id: str) -> str:
    """The compose project of one release of a colour."""
    return f"{project}-{colour}-{release_id}"


def service_host(service: str, colour: str, release_id: str) -> str:
    """The network alias of one service of one release: no other container ever answers to it."""
    return f"{service}-{colour}-{release_id}"


def infra_project(project: str) -> str:
    return f"{project}-infra"


def infra_container(project: str, service: str) -> str:
    """edge, db or backup."""
    return f"{project}-infra-{service}-1"


def edge_network(project: str) -> str:
    return f"{project}-edge"


def data_network(project: str) -> str:
    return f"{project}-data"


def backup_out_network(project: str) -> str:
    """The database's route out to a pgBackRest repository off the host (core/pitr.py)."""
    return f"{project}-backup-out"


def volume(project: str, what: str) -> str:
    """edge-state, db-data, dumps."""
    return f"{project}-{what}"


def env_name(service: str) -> str:
    """backend -> BACKEND, ai-gateway -> AI_GATEWAY: the prefix of <SERVICE>_URL."""
    return service.upper().replace("-", "_")
