"""Clients for the edge's security tests: certificates made here, HTTPS requests, and a
client that runs in a container on the project's edge network (another client IP)."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import textwrap
import threading
import uuid
from pathlib import Path

HOST = "app.test"


def access_lines(project) -> list[dict]:
    """The edge's access log so far, parsed (a line that is not JSON fails here)."""
    import time

    time.sleep(1.5)  # the log buffer is flushed every second
    out = project.edge.logs(stdout=True, stderr=False).decode()
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def make_cert(folder: Path, stem: str, cn: str = "app.test") -> tuple[Path, Path]:
    """A self-signed certificate (EC P-256) for `cn` and 127.0.0.1, made with openssl."""
    cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
    subprocess.run(
        [
            shutil.which("openssl") or "openssl",
            *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn},IP:127.0.0.1", "-days", "30"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def install(cert: Path, key: Path, to_cert: Path, to_key: Path) -> None:
    """Put a certificate where the config points, as certbot renews one in place."""
    to_cert.write_bytes(cert.read_bytes())
    to_key.write_bytes(key.read_bytes())
    to_key.chmod(0o600)


def tls_context(*certs: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cadata="".join(c.read_text() for c in certs))
    return ctx


def peer_der(port: int, ctx: ssl.SSLContext) -> bytes:
    """The certificate a new handshake presents (DER)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    conn.connect()
    try:
        return conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()


def der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def request(port: int, path: str, *, ctx: ssl.SSLContext | None = None, method: str = "GET", headers=None):
    """One request on a new connection to 127.0.0.1 (HTTPS when given a context); (response, body)."""
    if ctx is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": HOST, **(headers or {})})
        r = conn.getresponse()
        return r, r.read()
    finally:
        conn.close()


class HttpsLoad:
    """Clients that never retry: keep-alive ones, and ones with a new connection (and TLS
    handshake) per request. Every failure is kept."""

    def __init__(self, port: int, ctx: ssl.SSLContext, *, keepalive: int, fresh: int, path: str = "/api/version"):
        self.port, self.ctx, self.path = port, ctx, path
        self.failures: list[str] = []
        self.counts = {"keepalive": 0, "fresh": 0}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._keepalive) for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._fresh) for _ in range(fresh)]
        for t in self.threads:
            t.start()

    def _keepalive(self) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", self.path, headers={"Host": HOST})
                r = conn.getresponse()
                r.read()
                self.counts["keepalive"] += 1
                if r.status != 200:
                    self.failures.append(f"keepalive HTTP {r.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"keepalive {exc!r}")
                return

    def _fresh(self) -> None:
        while not self.stop.is_set():
            try:
                r, _ = request(self.port, self.path, ctx=self.ctx)
                self.counts["fresh"] += 1
                if r.status != 200:
                    self.failures.append(f"fresh HTTP {r.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"fresh {exc!r}")

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True, timeout=60)


# A client in a container: runs REQUESTS (a JSON list of {"path", "headers", "count",
# "interval", "port"}) against the edge by name, prints one JSON line per request.
CLIENT = textwrap.dedent(
    """
    import http.client, json, os, sys, time
    host = os.environ["EDGE"]
    for spec in json.loads(os.environ["REQUESTS"]):
        conn = http.client.HTTPConnection(host, spec.get("port", 80), timeout=10)
        for i in range(spec.get("count", 1)):
            if i and spec.get("interval"):
                time.sleep(spec["interval"])
            try:
                conn.request(spec.get("method", "GET"), spec["path"], headers=spec.get("headers", {}))
                r = conn.getresponse()
                body = r.read().decode(errors="replace")
                try:
                    body = json.loads(body)
                except ValueError:
                    body = None
                print(json.dumps({"status": r.status, "retry": r.getheader("Retry-After"), "body": body}), flush=True)
            except Exception as exc:
                print(json.dumps({"status": 0, "error": repr(exc)}), flush=True)
                conn.close()
                conn = http.client.HTTPConnection(host, spec.get("port", 80), timeout=10)
    """
)


class ContainerClient:
    """A client with its own IP on the project's edge network (a test-app container)."""

    def __init__(self, stack, *, name: str = "") -> None:
        self.stack = stack
        self.container = stack.docker.containers.run(
            stack.app_image,
            ["sleep", "600"],
            name=f"{stack.name}-client-{name or uuid.uuid4().hex[:6]}",
            network=f"{stack.name}-edge",
            detach=True,
            labels={"deployer.project": stack.name},
        )
        self.container.reload()
        self.ip = self.container.attrs["NetworkSettings"]["Networks"][f"{stack.name}-edge"]["IPAddress"]

    def start(self, requests: list[dict]):
        """Start the requests in the container; returns the exec's output stream."""
        env = {"EDGE": f"{self.stack.name}-infra-edge-1", "REQUESTS": json.dumps(requests)}
        api = self.stack.docker.api
        exec_id = api.exec_create(self.container.id, ["python3", "-c", CLIENT], environment=env)["Id"]
        return exec_id, api.exec_start(exec_id, stream=False)

    def run(self, requests: list[dict]) -> list[dict]:
        _, out = self.start(requests)
        return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]

    def remove(self) -> None:
        try:
            self.container.remove(force=True)
        except Exception:
            pass
