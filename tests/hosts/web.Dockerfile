# A tiny HTTP test image for the test hosts: debian slim + python3 (slim has neither python nor curl).
# `python3 -m http.server` or the default command, which answers GET / with the container's hostname.
ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
COPY web_server.py /usr/local/bin/web_server.py
EXPOSE 8080
CMD ["python3", "/usr/local/bin/web_server.py"]
