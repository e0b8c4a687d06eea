ARG BASE_IMAGE=debian:trixie-slim
# Runtime image for a Spring Boot (or any `java -jar`) service.
#
#   docker build -f deployer/assets/templates/spring-boot.Dockerfile -t my-backend .
#   (or `deployer build`, with these ARGs from services.<name>.build_args)
#
# Build context: normally your CI has already built the jar at build/libs/*.jar
# (Gradle `bootJar`; a `*-plain.jar` next to it is ignored). If no jar is there,
# the "jar" stage builds one with ./build.sh (or ./gradlew bootJar / ./mvnw package)
# - that is how examples/backend is built. It needs BuildKit (`deployer build` uses
# it): the JDK is a layer of its own before the sources, and apt's, Gradle's and
# Maven's downloads are cache mounts, so a one-line change rebuilds only the jar.
#
# ARGs:
#   BASE_IMAGE      base for both stages. Default debian:trixie-slim, where the JRE
#                   (JAVA_PACKAGE) is installed with apt. Any image that already has
#                   `java` skips the install, e.g. --build-arg BASE_IMAGE=eclipse-temurin:21-jre
#   BUILD_IMAGE     base of the jar stage only (defaults to BASE_IMAGE); e.g.
#                   eclipse-temurin:21-jdk when the jar is built inside Docker.
#   JAVA_PACKAGE    apt package for the runtime JRE (default openjdk-21-jre-headless).
#   HEALTHCHECK_PATH  path probed by HEALTHCHECK (default /actuator/health). `deployer build`
#                   passes the service's `health`, so the path is set in deployer.toml alone.
#   BUILD_PACKAGES  apt packages for the jar stage (the JDK is skipped if javac exists;
#                   the JDBC driver is for the bundled example's build.sh). Set it to ""
#                   to install nothing, when CI always puts the jar in build/libs.
#
# Run-time knobs: JAVA_OPTS (JVM flags, replaces the defaults below), PORT (8080,
# used by the HEALTHCHECK), and any Spring configuration through env variables.
ARG BUILD_IMAGE=${BASE_IMAGE}

# ---------------------------------------------------------------- jar stage
FROM ${BUILD_IMAGE} AS jar
ARG BUILD_PACKAGES="openjdk-21-jdk-headless libpostgresql-jdbc-java"
# Before the sources, so that a change to them does not run it again: the JDK (skipped
# where javac exists) and the build's packages, from apt's cache mounts (BuildKit).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    set -eu; \
    rm -f /etc/apt/apt.conf.d/docker-clean; \
    need=""; \
    for p in $BUILD_PACKAGES; do \
        case "$p" in openjdk-*-jdk*) if command -v javac >/dev/null 2>&1; then continue; fi;; esac; \
        dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; \
    done; \
    if [ -n "$need" ]; then \
        mkdir -p /usr/share/man/man1; \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need; \
    fi
WORKDIR /src
COPY . .
# The jar CI built, or one built here with Gradle's and Maven's caches mounted.
RUN --mount=type=cache,target=/root/.gradle \
    --mount=type=cache,target=/root/.m2 \
    set -eu; \
    jars() { ls "$@" 2>/dev/null | grep -v -- '-plain\.jar$' || true; }; \
    if [ -z "$(jars build/libs/*.jar)" ]; then \
        echo "no build/libs/*.jar in the context: building it here"; \
        if [ -x ./build.sh ]; then ./build.sh; \
        elif [ -x ./gradlew ]; then ./gradlew --no-daemon bootJar; \
        elif [ -x ./mvnw ]; then ./mvnw -B -DskipTests package && mkdir -p build/libs && cp $(jars target/*.jar) build/libs/; \
        else echo "error: put the jar in build/libs/ or provide ./build.sh, ./gradlew or ./mvnw" >&2; exit 1; fi; \
    fi; \
    set -- $(jars build/libs/*.jar); \
    if [ "$#" -ne 1 ]; then echo "error: expected exactly one jar in build/libs, found: $*" >&2; exit 1; fi; \
    mkdir -p /out; cp "$1" /out/app.jar; echo "using $1"

# ---------------------------------------------------------------- runtime stage
FROM ${BASE_IMAGE}
ARG JAVA_PACKAGE=openjdk-21-jre-headless
# Install a JRE only when the base has no java; add an unprivileged user (uid 10001).
RUN set -eu; \
    if ! command -v java >/dev/null 2>&1; then \
        mkdir -p /usr/share/man/man1; \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $JAVA_PACKAGE; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi; \
    java -version; \
    getent group 10001 >/dev/null || groupadd --system --gid 10001 app; \
    getent passwd 10001 >/dev/null || useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin app; \
    mkdir -p /app

WORKDIR /app
COPY --from=jar /out/app.jar /app/app.jar

# Container-aware heap sizing; die (and let Docker restart) instead of limping on OOM.
# Override at run time with -e JAVA_OPTS="..."; JAVA_TOOL_OPTIONS also works as usual.
ARG HEALTHCHECK_PATH=/actuator/health
ENV JAVA_OPTS="-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError" \
    PORT=8080 \
    HEALTHCHECK_PATH=${HEALTHCHECK_PATH}

USER 10001:10001
EXPOSE 8080

# curl when the base has it (eclipse-temurin does), else a bash /dev/tcp probe:
# no extra packages needed on debian:trixie-slim.
HEALTHCHECK --interval=5s --timeout=4s --start-period=60s --retries=3 \
  CMD if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null "http://127.0.0.1:${PORT:-8080}${HEALTHCHECK_PATH}"; \
      else bash -c 'exec 3<>"/dev/tcp/127.0.0.1/${PORT:-8080}" && printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "$HEALTHCHECK_PATH" >&3 && read -r _ code _ <&3 && [ "$code" = 200 ]'; fi

# exec: java is PID 1 and receives SIGTERM directly (graceful shutdown).
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS -jar /app/app.jar \"$@\"", "java"]
