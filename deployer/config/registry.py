"""[registry]: where release images go between the machine that built them and the hosts.

    [registry]
    url = "registry.example.com/shop"   # images go to <url>/<service image>:<version>
    env_file = "registry.env"           # REGISTRY_USERNAME, REGISTRY_PASSWORD (chmod 600)
    # no env_file: the Docker config's login for the registry's host (`docker login`)
    # anonymous = true: a registry that needs no login (one on a private network)

Credentials are never in the config file or on a command line: they come from an env
file (checked here) or from the Docker config of the user running the CLI (looked up when
an image moves, see deployer/flows/artifacts.py). Without [registry], images move from
the CLI's engine to a remote host by `docker save | docker load` over the ssh tunnel.
"""

from __future__ import annotations

import re

from deployer.config.envfile import read as read_env_file
from deployer.config.model import Registry
from deployer.config.reader import Reader

# host[:port] then path components, lowercase, as docker names repositories.
URL = re.compile(
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
KEYS = ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")


def read(r: Reader) -> Registry | None:
    if r.get("registry") is None:
        return None
    r.table("registry")
    url = r.matching(
        "registry.url", URL, "a registry and path without a scheme, such as registry.example.com/shop", required=True
    )
    port = re.match(r"[^/:]*:([0-9]+)", url)
    if port and not 1 <= int(port.group(1)) <= 65535:
        raise r.error("registry.url", f"the port {port.group(1)} is not between 1 and 65535")
    env_file = r.path("registry.env_file", must_exist=True, kind="file")
    anonymous = r.boolean("registry.anonymous", default=Registry.anonymous)
    if anonymous and env_file:
        raise r.error("registry.anonymous", "contradicts registry.env_file: a registry either needs a login or not")
    if env_file and r.check_paths:
        with r.files():
            values = read_env_file(env_file, where=r.file, key="registry.env_file").values
            for key in KEYS:
                if not values.get(key):
                    raise r.error("registry.env_file", f"registry credentials missing: {env_file} must set {key}")
    return Registry(url=url.rstrip("/"), env_file=env_file, anonymous=anonymous)
