"""`deployer up` and `deployer down`: networks, the edge, the database (project <name>-infra)."""

from __future__ import annotations

from collections.abc import Callable

from deployer import colours, engine, images, site
from deployer.config import Config
from deployer.edge import LIVE_PORT, PREVIEW_PORT, Edge
from deployer.errors import EdgeError, EngineError
from deployer.plan import COLOURS


def publish(bind: str, port: int, container_port: int) -> str:
    """A compose port mapping; port 0 lets Docker pick a free host port."""
    return f"{bind}:{port or ''}:{container_port}"


def variables(config: Config, edge_image: str, db_image: str, backup_image: str = "none") -> dict[str, str]:
    return {
        **backup_variables(config, backup_image),
        "DEPLOYER_PROJECT": config.name,
        "DEPLOYER_RESTART": config.restart,
        "EDGE_IMAGE": edge_image,
        "DB_IMAGE": db_image,
        "DB_NAME": config.database.name,
        "DB_ENV_FILE": str(config.database.env_file),
        "PUBLIC_PUBLISH": publish(config.edge.public_bind, config.edge.public_port, LIVE_PORT),
        "PREVIEW_PUBLISH": publish("127.0.0.1", config.edge.preview_port, PREVIEW_PORT),
    }


def backup_variables(config: Config, backup_image: str) -> dict[str, str]:
    """The `backup` service: the deployer's own image, run as the caller, with the config's folder mounted."""
    import os

    sock = "/var/run/docker.sock"
    return {
        "BACKUP_IMAGE": backup_image,
        "DEPLOYER_CONFIG": str(config.path),
        "CONFIG_DIR": str(config.root),
        "BACKUP_DIR": str(config.backup.dir),
        "BACKUP_USER": f"{os.getuid()}:{os.getgid()}",
        "DOCKER_GID": str(os.stat(sock).st_gid if os.path.exists(sock) else 0),
        "BACKUP_NETWORK_MODE": "bridge" if config.backup.webhook else "none",
    }


def up(config: Config, say: Callable[[str], None] = print) -> None:
    """Idempotent: creates what is missing, changes only what differs, never touches a colour."""
    from python_on_whales.exceptions import DockerException

    for name, internal in config.networks.items():
        engine.ensure_network(name, internal=internal)
    say("images: edge, database and backup")
    edge_image = images.own_image("nginx", config.base_image)
    db_image = config.database.image or images.own_image("db", config.base_image)
    if config.database.image and not engine.image_exists(db_image):
        raise EngineError(f"database image {db_image} does not exist", step="up")
    from deployer.backup import image as own

    backup_image = own.own_image(config.base_image)
    config.backup.dir.mkdir(parents=True, exist_ok=True)
    values = variables(config, edge_image, db_image, backup_image)
    with colours.compose(config.infra_project, "infra.yml", values) as docker:
        try:
            docker.compose.up(detach=True, remove_orphans=True, pull="never", wait=True, wait_timeout=120, quiet=True)
        except DockerException as exc:
            raise EngineError("compose up of the infrastructure failed", step="up", logs=colours.error_text(exc)) from None
    edge = Edge(config)
    if edge.apply_site(site.render(config), step="up"):
        say("edge: site config applied and reloaded")
    live, preview = edge.urls()
    say(f"edge: live {live}  preview {preview}")


def down(config: Config, *, volumes: bool, say: Callable[[str], None] = print) -> None:
    """Remove both colours and the infrastructure; the database volume only with volumes=True."""
    from python_on_whales.exceptions import DockerException

    for colour in COLOURS:
        colours.remove(config, colour)
    values = variables(config, "none", "none")
    with colours.compose(config.infra_project, "infra.yml", values) as docker:
        try:
            docker.compose.down(remove_orphans=True, volumes=volumes, quiet=True)
        except DockerException as exc:
            raise EngineError("compose down of the infrastructure failed", step="down", logs=colours.error_text(exc)) from None
    for name in config.networks:
        try:
            engine.client().networks.get(name).remove()
        except Exception:  # already gone, or still used by a container we do not own
            pass
    say("removed" + (" (database volume too)" if volumes else " (database volume kept)"))


def require_edge(config: Config) -> Edge:
    edge = Edge(config)
    state = engine.container_state(edge.container)
    if state is None or not state["State"].get("Running"):
        raise EdgeError(f"the edge {edge.container} is not running: run `deployer up` first", step="edge")
    return edge
