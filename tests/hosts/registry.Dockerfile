# A local image registry (Debian's docker-registry 2.8) for the swarm test cluster.
# Built by tests/hosts/swarm.py as deployer-testregistry:<content hash>; plain http on :5000,
# the nodes' dockerd trust it with --insecure-registry.
ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/*
COPY registry-config.yml /etc/docker/registry/config.yml
EXPOSE 5000
VOLUME /var/lib/docker-registry
ENTRYPOINT ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]
