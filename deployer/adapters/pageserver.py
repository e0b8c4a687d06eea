"""`deployer page`'s server: the edge's admin paths (core/adminpage.py) on this machine's
127.0.0.1:<port> only, each GET answered by fetching the same path from the admin port inside
the edge (Edge.admin_get: one exec through the engine, locally, over ssh or on a swarm's
manager, where the edge is the control). Anything else is a 404 that runs nothing."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deployer.adapters.edge import Edge
from deployer.core import adminpage
from deployer.errors import InputError

ADDRESS = "127.0.0.1"  # never another: the page shows the previous release's versions and the history


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__((ADDRESS, port), _Handler)
        self.port = port
        self.edge: Edge | None = None
        self.lock = threading.Lock()  # one exec at a time: a browser asks for five files at once


def listen(port: int) -> PageServer:
    """A server bound to 127.0.0.1:port; InputError (one line) when the port cannot be had."""
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535: {port}")
    try:
        return PageServer(port)
    except OSError as exc:
        raise InputError(f"cannot listen on {ADDRESS}:{port} (--port): {exc.strerror or exc}") from None


def serve(server: PageServer, edge: Edge) -> None:
    """Answer requests until interrupted (KeyboardInterrupt goes on to the caller)."""
    server.edge = edge
    server.serve_forever(poll_interval=0.2)


class _Handler(BaseHTTPRequestHandler):
    server: PageServer
    protocol_version = "HTTP/1.1"  # keep-alive: a browser's five requests on one connection
    server_version = "deployer-page"

    def do_GET(self) -> None:
        hosts = {f"{ADDRESS}:{self.server.port}", f"localhost:{self.server.port}"}
        if self.headers.get("Host") not in hosts:  # a page of another site, through DNS rebinding
            return self._answer(403, "text/plain", b"forbidden\n")
        if self.path in ("/", adminpage.PAGE.rstrip("/")):
            return self._answer(302, "text/plain", b"", location=adminpage.PAGE)
        path = adminpage.admin_path(self.path)
        if path is None or self.server.edge is None:
            return self._answer(404, "text/plain", b"not found\n")
        try:
            with self.server.lock:
                status, kind, body = self.server.edge.admin_get(path)
        except Exception as exc:  # the edge gone, the engine unreachable: the next request tries again
            return self._answer(502, "text/plain", f"{type(exc).__name__}: {exc}\n".encode())
        self._answer(status, kind, body.encode())

    def _answer(self, status: int, kind: str, body: bytes, location: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """No line per request."""
