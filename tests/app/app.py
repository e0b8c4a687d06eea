#!/usr/bin/env python3
"""Tiny HTTP test service for the blue-green deployer integration tests.

Standard library only. Behaviour is controlled through environment variables:

  PORT            listening port on 0.0.0.0 (default 8080)
  APP_VERSION     reported version (default "dev")
  APP_COLOUR      reported colour (default "none")
  APP_SERVICE     reported service name (default "app")
  APP_BUILD       when set, reported as "build" in every JSON answer (tells apart two images
                  released under one version; the deployer never sets it)
  STARTUP_DELAY   seconds to wait before listening at all (float, default 0)
  NEVER_HEALTHY   "1" -> /health always answers 503
  LISTEN_PORT     listen on this port whatever PORT says (an app that ignores its config)
  (file)          while /tmp/unhealthy exists, /health answers 503 (tests turn a colour sick)
  CRASH_AFTER     seconds after which the process exits with code 3
  SLOW_PATH       path (or path suffix, e.g. /api/slow) that answers slowly (default /slow)
  SLOW_SECONDS    how long the slow path sleeps (default 2); `?ms=N` on the slow path: N ms
  EVENT_INTERVAL  seconds between server-sent events (default 0.5)
  EVENT_COUNT     number of server-sent events per stream (default 20)
  GET .../ws      with Upgrade: websocket, the same events as WebSocket text frames, then a close
  DRAIN_SECONDS   max seconds to wait for in-flight requests on SIGTERM (default 10)
  STOP_DELAY      seconds to go on serving, healthy, after SIGTERM before draining (default 0),
                  like an app with a pre-stop pause
  ERROR_RATE      share (0-1) of requests to /api/ paths that answer 500, once ERROR_AFTER seconds
                  have passed since start (default 0: none), like a release that is healthy and
                  then fails real traffic
  GET .../status/NNN  answers with status NNN
  GET .../download/N  N KiB of body (Content-Length), written 16 KiB at a time, DOWNLOAD_INTERVAL
                  seconds apart (default 0.1): a large answer that streams slowly
  A request to the slow path logs one line, with its id: `slow request id=<X-Request-ID> ...`
  (only those: other tests read the last lines of a quiet log).
  Every JSON answer carries "raw": the request target exactly as the app received it,
  and "forwarded": the Host, X-Forwarded-*, Forwarded, X-Real-IP and X-Request-ID headers it
  received. Every answer returns the X-Request-ID it received, as many apps do.
"""

import base64
import hashlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _float_env(name, default):
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        log(f"ignoring invalid {name}={raw!r}")
        return default


def log(msg):
    sys.stderr.write(f"[testapp] {msg}\n")
    sys.stderr.flush()


PORT = int(os.environ.get("LISTEN_PORT") or os.environ.get("PORT", "8080") or "8080")
VERSION = os.environ.get("APP_VERSION", "dev")
COLOUR = os.environ.get("APP_COLOUR", "none")
SERVICE = os.environ.get("APP_SERVICE", "app")
BUILD = os.environ.get("APP_BUILD", "")
STARTUP_DELAY = _float_env("STARTUP_DELAY", 0.0)
NEVER_HEALTHY = os.environ.get("NEVER_HEALTHY", "") == "1"
CRASH_AFTER = _float_env("CRASH_AFTER", None)
SLOW_PATH = os.environ.get("SLOW_PATH", "/slow") or "/slow"
SLOW_SECONDS = _float_env("SLOW_SECONDS", 2.0)
EVENT_INTERVAL = _float_env("EVENT_INTERVAL", 0.5)
EVENT_COUNT = int(_float_env("EVENT_COUNT", 20))
DRAIN_SECONDS = _float_env("DRAIN_SECONDS", 10.0)
STOP_DELAY = _float_env("STOP_DELAY", 0.0)
ERROR_RATE = _float_env("ERROR_RATE", 0.0)
ERROR_AFTER = _float_env("ERROR_AFTER", 0.0)
DOWNLOAD_INTERVAL = _float_env("DOWNLOAD_INTERVAL", 0.1)
STARTED = time.monotonic()

HEALTH_PATHS = ("/health", "/actuator/health")
# Headers a proxy sets about the client: echoed under "forwarded" in every JSON answer.
FORWARDED = (
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "forwarded",
    "x-real-ip",
    "x-request-id",
)

_ready = threading.Event()
_draining = threading.Event()
_inflight_lock = threading.Condition()
_inflight = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY each answer on a reused
    # connection waits for the peer's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server_version = "deployer-testapp"
    sys_version = ""

    def version_string(self):
        return self.server_version

    # -- bookkeeping -------------------------------------------------------
    def log_message(self, fmt, *args):  # no per-request logging
        pass

    def _enter(self):
        global _inflight
        with _inflight_lock:
            _inflight += 1

    def _leave(self):
        global _inflight
        with _inflight_lock:
            _inflight -= 1
            _inflight_lock.notify_all()

    def _path(self):
        return self.path.split("?", 1)[0].split("#", 1)[0] or "/"

    def _common_headers(self):
        self.send_header("X-App-Version", VERSION)
        self.send_header("X-App-Colour", COLOUR)
        self.send_header("X-App-Service", SERVICE)
        if "X-Request-ID" in self.headers:
            self.send_header("X-Request-ID", self.headers["X-Request-ID"])
        if _draining.is_set():
            # Ask keep-alive clients to go elsewhere while we drain.
            self.send_header("Connection", "close")
            self.close_connection = True

    def _send_json(self, status, obj, head=False):
        body = (json.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self._common_headers()
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def _info(self, path):
        return {
            "service": SERVICE,
            "version": VERSION,
            "colour": COLOUR,
            "path": path,
            "raw": self.path,
            "forwarded": {k.lower(): v for k, v in self.headers.items() if k.lower() in FORWARDED},
            **({"build": BUILD} if BUILD else {}),
            # the names (never the values) of the secrets the deployer delivered as files
            **({"secret_files": sorted(os.listdir("/run/secrets"))} if os.path.isdir("/run/secrets") else {}),
        }

    def _failing(self, path):
        """True when this request should answer 500 (ERROR_RATE, after ERROR_AFTER)."""
        import random

        return (
            ERROR_RATE > 0
            and path.startswith("/api/")
            and time.monotonic() - STARTED >= ERROR_AFTER
            and random.random() < ERROR_RATE
        )

    def _is_slow(self, path):
        return path == SLOW_PATH or path.endswith(SLOW_PATH) or path.startswith(SLOW_PATH + "/")

    def _pause(self, path):
        """The slow path's sleep (`?ms=N`, else SLOW_SECONDS), logged with the request's id."""
        if self._is_slow(path):
            query = dict(p.partition("=")[::2] for p in self.path.partition("?")[2].split("&"))
            ms = query.get("ms", "")
            seconds = int(ms) / 1000 if ms.isdigit() else SLOW_SECONDS
            log(f"slow request id={self.headers.get('X-Request-ID', '-')} {self.command} {path} {seconds:g}s")
            time.sleep(seconds)

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until blank line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                remaining = size
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    total += len(chunk)
                self.rfile.readline(3)  # CRLF after chunk
            return total
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            length = 0
        remaining, total = length, 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
            total += len(chunk)
        return total

    # -- handlers ----------------------------------------------------------
    def _handle_get(self, head=False):
        path = self._path()
        if path in HEALTH_PATHS:
            sick = NEVER_HEALTHY or os.path.exists("/tmp/unhealthy")
            if _ready.is_set() and not sick and not _draining.is_set():
                self._send_json(200, {"status": "UP"}, head)
            else:
                self._send_json(503, {"status": "DOWN"}, head)
            return
        if not head and (path == "/events" or path.endswith("/events")):
            self._events()
            return
        if not head and path.endswith("/ws") and self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        if not head and "/download/" in path and path.rsplit("/download/", 1)[1].isdigit():
            self._download(int(path.rsplit("/download/", 1)[1]))
            return
        self._pause(path)
        status_code = path.rsplit("/status/", 1)[1] if "/status/" in path else ""
        if status_code.isdigit() and 200 <= int(status_code) <= 599:
            self._send_json(int(status_code), self._info(path), head)
            return
        if self._failing(path):
            self._send_json(500, self._info(path), head)
            return
        self._send_json(200, self._info(path), head)

    def _stream(self, status, headers, frame, closing=b""):
        """Send the headers, then EVENT_COUNT events {"version","colour","n"} every
        EVENT_INTERVAL, each wrapped by `frame`, then `closing`."""
        self.close_connection = True
        self.send_response(*status)
        for name, value in headers + [("X-App-Version", VERSION), ("X-App-Colour", COLOUR), ("X-App-Service", SERVICE)]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        try:
            for i in range(EVENT_COUNT):
                if i:
                    time.sleep(EVENT_INTERVAL)
                payload = json.dumps({"version": VERSION, "colour": COLOUR, "n": i}, separators=(",", ":"))
                self.wfile.write(frame(payload.encode("utf-8")))
                self.wfile.flush()
            self.wfile.write(closing)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _events(self):
        """Server-sent events."""
        headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("Connection", "close")]
        self._stream((200,), headers, lambda payload: b"data: " + payload + b"\n\n")

    def _websocket(self):
        """A minimal WebSocket (RFC 6455): the handshake, the events as text frames, a close frame."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]
        self._stream(
            (101, "Switching Protocols"),
            headers,
            lambda payload: bytes([0x81, len(payload)]) + payload,  # text frame, payload < 126 bytes
            closing=bytes([0x88, 2, 0x03, 0xE8]),  # close, 1000 normal
        )

    def _download(self, kib):
        """`kib` KiB of body, 16 KiB per write, DOWNLOAD_INTERVAL apart."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(kib * 1024))
        self._common_headers()
        self.end_headers()
        self.wfile.flush()
        try:
            for left in range(kib, 0, -16):
                self.wfile.write(b"x" * (min(16, left) * 1024))
                self.wfile.flush()
                time.sleep(DOWNLOAD_INTERVAL)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _dropped(self):
        """After an answer to `.../drop-next`, the next request on the same connection gets
        no answer: the connection is closed, as a server that closes idle keep-alive
        connections without saying so would (what a proxy's pool must survive)."""
        if getattr(self, "_drop_next", False):
            self.close_connection = True
            return True
        self._drop_next = self._path().endswith("/drop-next")
        return False

    def do_GET(self):
        if self._dropped():
            return
        self._enter()
        try:
            self._handle_get()
        finally:
            self._leave()

    def do_HEAD(self):
        if self._dropped():
            return
        self._enter()
        try:
            self._handle_get(head=True)
        finally:
            self._leave()

    def do_POST(self):
        if self._dropped():
            return
        self._enter()
        try:
            received = self._read_body()
            path = self._path()
            self._pause(path)
            info = self._info(path)
            info["received"] = received
            self._send_json(200, info)
        finally:
            self._leave()

    do_PUT = do_POST
    do_PATCH = do_POST
    do_DELETE = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Client disconnects etc. are expected in tests; stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        log(f"error serving {client_address}: {exc!r}")


def _crash():
    log("crashing as asked by CRASH_AFTER")
    os._exit(3)


def main():
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if CRASH_AFTER is not None:
        t = threading.Timer(CRASH_AFTER, _crash)
        t.daemon = True
        t.start()

    if STARTUP_DELAY > 0:
        log(f"starting in {STARTUP_DELAY:.3g}s (STARTUP_DELAY)")
        if stop.wait(STARTUP_DELAY):
            log("signal received before listening, exiting")
            return 0

    httpd = Server(("0.0.0.0", PORT), Handler)
    serve = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="serve", daemon=True)
    serve.start()
    _ready.set()
    log(f"listening on :{PORT} version={VERSION} colour={COLOUR} service={SERVICE}")

    while not stop.wait(1.0):
        pass

    if STOP_DELAY > 0:
        log(f"shutdown requested, serving on for {STOP_DELAY:g}s (STOP_DELAY)")
        time.sleep(STOP_DELAY)
    log(f"shutdown requested, no longer accepting connections; draining up to {DRAIN_SECONDS:g}s")
    _draining.set()
    httpd.shutdown()  # stop the accept loop
    httpd.socket.close()  # new connections are now refused
    deadline = time.monotonic() + DRAIN_SECONDS
    with _inflight_lock:
        while _inflight > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _inflight_lock.wait(left)
        remaining = _inflight
    if remaining:
        log(f"drain timeout, {remaining} request(s) still in flight; exiting")
    else:
        log("drained, exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
