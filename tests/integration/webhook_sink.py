"""A webhook receiver for the notification tests: an HTTP server that records every JSON
body POSTed to it. On this machine's loopback by default (the CLI runs here, so it reaches
it); on a Docker network's gateway address, containers of that network reach it too."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink:
    """POST /ok/... answers 204 and records the body; POST /fail/... answers 500. A POST
    from an address in `refuse_from` (a container's, say) answers 503, unrecorded."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.bodies: list[dict] = []
        self.refuse_from: set[str] = set()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.client_address[0] in sink.refuse_from:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path.startswith("/fail/"):
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                with sink._lock:
                    sink.bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.host = host
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def events(self) -> list[str]:
        with self._lock:
            return [b.get("event", "") for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
