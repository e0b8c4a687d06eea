#!/bin/sh
# Write the config from the environment, then run nginx in the foreground.
#   PORT (8080), APP_VERSION, APP_COLOUR, APP_SERVICE, APP_WORKERS (nginx workers, default 1),
#   STARTUP_DELAY (seconds before it listens, default 0: a stand-in for a slow-starting app)
set -eu
port=${PORT:-8080}
version=${APP_VERSION:-dev}
colour=${APP_COLOUR:-none}
service=${APP_SERVICE:-app}
workers=${APP_WORKERS:-1}
body="{\"service\":\"$service\",\"version\":\"$version\",\"colour\":\"$colour\"}"
cat > /etc/nginx/nginx.conf <<CONF
worker_processes $workers;
worker_rlimit_nofile 65536;
pid /run/nginx.pid;
error_log /dev/stderr error;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server {
        listen $port default_server reuseport backlog=4096;
        default_type application/json;
        add_header X-App-Version "$version" always;
        add_header X-App-Colour "$colour" always;
        add_header X-App-Service "$service" always;
        add_header Cache-Control "no-store" always;
        location / { return 200 '$body\n'; }
    }
}
CONF
sleep "${STARTUP_DELAY:-0}"
exec nginx -g 'daemon off;'
