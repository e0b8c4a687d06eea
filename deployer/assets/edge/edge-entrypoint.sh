#!/bin/sh
# Start nginx with the last rendered site; on a fresh volume, with a placeholder that
# answers 503 until `deployer up` renders the real one. The route state in state/
# survives restarts: that is how the edge keeps its live colour.
set -eu
dir=/var/lib/deployer
mkdir -p "$dir/state" /run/deployer
# nginx removes its control socket when it stops, but not when it is killed (SIGKILL, the
# kernel's out-of-memory killer): a socket file left in the container's layer would make
# every restart fail to bind it, and the edge would never come back. No nginx runs yet.
rm -f /run/deployer/control.sock
# The gateways of the edge's networks (its default routes, from /proc/net/route, in hex
# and little-endian): the Docker host's connections to the preview port it publishes on
# its 127.0.0.1 come from there, through Docker's userland proxy and its NAT alike. The
# site lets only them and 127.0.0.1 use the preview and admin server ($deployer_admin).
while read -r _ dest gw _; do
  [ "$dest" = 00000000 ] && [ "$gw" != 00000000 ] || continue
  a=${gw#??????}; b=${gw#????}; c=${gw#??}
  echo "$((0x$a)).$((0x${b%??})).$((0x${c%????})).$((0x${gw%??????})) 1;"
done < /proc/net/route > /run/deployer/gateways.geo
# Open files: as many as the container may have, up to 65536; half of them per worker
# for connections (a proxied request holds two), at most 16384.
hard=$(ulimit -Hn)
case "$hard" in unlimited|*[!0-9]*) hard=65536 ;; esac
[ "$hard" -gt 65536 ] && hard=65536
conns=$((hard / 2))
[ "$conns" -gt 16384 ] && conns=16384
echo "worker_rlimit_nofile $hard;" > /run/deployer/limits-main.conf
echo "worker_connections $conns;" > /run/deployer/limits-events.conf
# The HTTPS server's placeholder certificate: nginx wants one in the site, but it is never
# served (lua/deployer/tls.lua sets the uploaded one per handshake, or fails the handshake).
if [ ! -s /run/deployer/fallback.pem ]; then
  (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
     -subj /CN=deployer-placeholder -keyout /run/deployer/fallback.key -out /run/deployer/fallback.crt 2>/dev/null \
   && cat /run/deployer/fallback.crt /run/deployer/fallback.key > /run/deployer/fallback.pem \
   && rm -f /run/deployer/fallback.crt /run/deployer/fallback.key)
fi
# An edge from before per-colour route state kept only `live=<colour>` in routes.
if [ ! -e "$dir/state/live" ] && [ -f "$dir/routes" ]; then
  sed -n 's/^live=\(blue\|green\)$/\1/p' "$dir/routes" > "$dir/state/live"
fi
if [ ! -s "$dir/site.conf" ]; then
  cat > "$dir/site.conf" <<'CONF'
upstream deployer_app {
    server 0.0.0.1;
    balancer_by_lua_block { require("deployer.balancer").run() }
    keepalive 16;
}
server { listen 80 default_server reuseport; location / { return 503 "no release yet\n"; } }
server { listen 8081 reuseport; location = /_deployer/edge { return 200 "ok\n"; } location / { return 503; } }
server {
    listen unix:/run/deployer/control.sock;
    location = /reload { content_by_lua_block { require("deployer.state").reload_handler() } }
}
CONF
fi
[ $# -gt 0 ] && exec "$@"
# nginx under the access log's relay (edge-log-relay): the workers' 4 KB writes to the FIFO,
# whole lines, go to stdout in large writes; signals go on to nginx.
exec /usr/local/bin/edge-log-relay /run/deployer/access.fifo nginx -g 'daemon off;'
