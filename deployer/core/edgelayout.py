"""Where things are inside the edge container: its volume and the files in it, its run-time
folder and control socket, the ports its nginx listens on.

The Python reads these names from here. The site template gets them when it is rendered
(core/site.py); the edge's image bakes them in (Dockerfile, nginx.conf, the entrypoint, the
Lua), and tests/unit/test_edge_layout.py holds those files to these values.
"""

from __future__ import annotations

HOME = "/var/lib/deployer"  # the volume <name>-edge-state: route state, site, lock, history, TLS
STATE = f"{HOME}/state"  # the route state (core/state.py, lua/deployer/state.lua)
SITE = f"{HOME}/site.conf"  # the rendered site that nginx.conf includes
# nginx.conf with SITE.new in SITE's place (made in the image): `nginx -t` of a new site
CANDIDATE = "/etc/nginx/nginx-candidate.conf"
TLS = f"{HOME}/tls"  # the certificates' generations, and `live` (lua/deployer/tls.lua)
RUN = "/run/deployer"  # made by the entrypoint at each start
CONTROL = f"{RUN}/control.sock"  # the control server: /reload, /tls, /drain, /forget-metrics
FALLBACK_PEM = f"{RUN}/fallback.pem"  # the HTTPS server's placeholder; never served
GATEWAYS = f"{RUN}/gateways.geo"  # the gateways of the edge's networks: the Docker host
ACCESS_FIFO = f"{RUN}/access.fifo"  # the access log, relayed to stdout (edge-log-relay)

# The ports nginx listens on in the container (the config's ports are the host's).
PUBLIC_PORT = 80
HTTPS_PORT = 443
PREVIEW_PORT = 8081  # the preview and admin server: published on the host's 127.0.0.1 only

# Swarm mode: how the control edge and the public replicas find each other (lua/deployer/sync.lua).
SYNC_CONF = "/etc/deployer/sync.conf"
SYNC_TOKEN = "/run/secrets/deployer_sync"
TLS_SECRET = "deployer_tls"  # a public replica's certificate and key: /run/secrets/<this> (lua/deployer/tls.lua)

MOUNT = f"edge-state:{HOME}"  # the volume's mount, in compose files and swarm stacks
