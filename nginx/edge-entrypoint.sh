#!/bin/sh
# Start nginx with the last rendered site; on a fresh volume, with a placeholder
# that answers 503 until the first `deployer up` renders the real one.
set -eu
state=/var/lib/deployer
mkdir -p "$state"
if [ ! -s "$state/site.conf" ]; then
  cat > "$state/site.conf" <<'CONF'
server { listen 80 default_server; location / { return 503 "no release yet\n"; } }
server { listen 8081; location = /_deployer/edge { return 200 "ok\n"; } location / { return 503; } }
CONF
fi
[ -e "$state/routes" ] || printf 'live=\npreview=\n' > "$state/routes"
[ $# -gt 0 ] && exec "$@"
exec nginx -g 'daemon off;'
