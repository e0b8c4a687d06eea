"""What a Docker Engine older than 28 lets the hosts of its local network reach (pure).

Docker Engine 28.0.0's release notes (networking, port publishing in bridge networks) list:
"Fix a security issue that was allowing remote hosts to connect directly to a container on
its published ports" and "... allowing neighbor hosts to connect to ports mapped on a
loopback address" (moby/moby#49325), and "Direct routed access to container ports that are
not exposed using -p/--publish is now blocked" (moby/moby#48724). Docker's announcement of
Engine 28 says the last concerned hosts on the same physical or link-layer network, where
the host's filter-FORWARD chain accepts (its policy is ACCEPT) and IP forwarding is on.
`deployer status` shows the warning below for such an engine (docs/security.md).
"""

from __future__ import annotations

import re

FILTERED_SINCE = 28  # the first major version that filters direct routing from the LAN


def major(version: str) -> int | None:
    """The major version of an engine's version string ("20.10.24+dfsg1" -> 20), or None."""
    m = re.match(r"\s*v?([0-9]+)\.", version or "")
    return int(m.group(1)) if m else None


def lan_warning(versions: dict[str, str]) -> str | None:
    """A warning naming each engine (by where it runs) older than 28, or None."""
    old = {where: v for where, v in versions.items() if (major(v) or FILTERED_SINCE) < FILTERED_SINCE}
    if not old:
        return None
    engines = ", ".join(f"{v} on {where}" for where, v in sorted(old.items()))
    return (
        f"Docker Engine older than 28 ({engines}): hosts on the same network segment can connect straight to "
        "the containers' addresses: to every published port whatever address it is published on (the preview "
        "port on 127.0.0.1, which the edge refuses to them; the public port that edge.public_bind narrows) and, "
        "where the host's FORWARD chain accepts, to the apps' own ports, past the edge and its limits; upgrade "
        "the engine or filter that segment (docs/security.md)"
    )
