ARG BASE_IMAGE=debian:trixie-slim
# Next.js standalone image (deps -> build -> runtime).
#
#   docker build -f deployer/assets/templates/nextjs.Dockerfile -t my-frontend .
#   (or `deployer build`, with these ARGs from services.<name>.build_args)
#
# The app must set `output: 'standalone'` in next.config.js; it is started with
# `node server.js`, listening on $PORT (3000) and $HOSTNAME (0.0.0.0).
#
# ARGs:
#   BASE_IMAGE        base of every stage. Default debian:trixie-slim, where Debian's
#                     nodejs (and npm, build stages only) are installed with apt. A base
#                     that already has node/npm skips the install, e.g.
#                     --build-arg BASE_IMAGE=node:20-slim
#   NPM_INSTALL       dependency install command (default: `npm ci`, needs package-lock.json;
#                     use "npm install --no-audit --no-fund" without a lockfile).
#   HEALTHCHECK_PATH  path probed by HEALTHCHECK (default /healthz; give your app a
#                     dynamic route handler there). `deployer build` passes the service's
#                     `health`, so the path is set in deployer.toml alone.
#
# All stages start FROM ${BASE_IMAGE}: the identical first RUN layers are shared
# through the build cache, so node is installed once. It needs BuildKit (`deployer
# build` uses it) for its cache mounts.

# ---------------------------------------------------------------- deps
FROM ${BASE_IMAGE} AS deps
# Layer 1 (shared by all stages): node runtime.
RUN set -eu; if ! command -v node >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs ca-certificates; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi; node --version
# Layer 2 (deps and build only): npm.
RUN set -eu; if ! command -v npm >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi; npm --version
ARG NPM_INSTALL="npm ci --no-audit --no-fund"
WORKDIR /app
# The manifests before the sources: a source change does not install again; npm's
# download cache is a cache mount (BuildKit), so a changed lockfile fetches only what changed.
COPY package.json package-lock.json* ./
RUN --mount=type=cache,target=/root/.npm ${NPM_INSTALL}

# ---------------------------------------------------------------- build
FROM ${BASE_IMAGE} AS build
RUN set -eu; if ! command -v node >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs ca-certificates; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi; node --version
RUN set -eu; if ! command -v npm >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi; npm --version
WORKDIR /app
ENV NEXT_TELEMETRY_DISABLED=1 \
    NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# Next.js's own build cache (.next/cache) is a cache mount: a one-line change recompiles
# only what it touches.
RUN --mount=type=cache,target=/app/.next/cache \
    set -eu; npm run build; \
    test -f .next/standalone/server.js || { echo "error: set output: 'standalone' in next.config.js" >&2; exit 1; }; \
    mkdir -p public

# ---------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}
RUN set -eu; if ! command -v node >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs ca-certificates; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi; node --version
# Unprivileged user (uid 10001); node:20-slim's own "node" user is left alone.
RUN set -eu; \
    getent group 10001 >/dev/null || groupadd --system --gid 10001 app; \
    getent passwd 10001 >/dev/null || useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin app
ARG HEALTHCHECK_PATH=/healthz
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    PORT=3000 \
    HOSTNAME=0.0.0.0 \
    HEALTHCHECK_PATH=${HEALTHCHECK_PATH}
COPY --from=build --chown=10001:10001 /app/.next/standalone ./
COPY --from=build --chown=10001:10001 /app/.next/static ./.next/static
COPY --from=build --chown=10001:10001 /app/public ./public

USER 10001:10001
EXPOSE 3000

# node is always present: probe with its built-in fetch (no curl needed).
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+(process.env.HEALTHCHECK_PATH||'/healthz'),{signal:AbortSignal.timeout(3000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# node is PID 1 and gets SIGTERM directly.
CMD ["node", "server.js"]
