# The deployer's own image: runs `deployer` (the backup schedule in the infra stack uses it).
ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 python3-venv ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /opt/deployer

ENV PATH=/opt/deployer/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Dependencies first, in their own layer: a code change rebuilds only the last layer.
COPY pyproject.toml /src/pyproject.toml
RUN set -eux; \
    python -c "import tomllib; d = tomllib.load(open('/src/pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies'] + d['build-system']['requires']))" > /tmp/requirements.txt; \
    pip install --no-cache-dir -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt

COPY . /src
RUN set -eux; \
    pip install --no-cache-dir --no-deps --no-build-isolation /src; \
    rm -rf /src; \
    deployer --help > /dev/null

ENTRYPOINT ["deployer"]
CMD ["--help"]
