"""Clients that stretch or cut their own exchanges with the edge, or draw the edge's own
answers, each from an address of its own behind a trusted proxy (X-Forwarded-For). They
send to 127.0.0.1 only, and every loop ends by itself (a count and a deadline)."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time

TIMEOUT = 30.0


def _request(
    port: int, addr: str, path: str, *, method: str = "GET", extra: str = "", connection: str = "close"
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    head = f"{method} {path} HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: {addr}\r\nConnection: {connection}\r\n"
    head += f"{extra}\r\n"
    sock.sendall(head.encode())
    return sock


def _status(sock: socket.socket, *, pause: float = 0.0, chunk: int = 65536) -> int:
    """Read the answer to its end (`pause` between reads: a slow reader); its status."""
    data = b""
    try:
        while True:
            piece = sock.recv(chunk)
            if not piece:
                break
            data += piece[:64] if len(data) < 64 else b""
            if pause:
                time.sleep(pause)
    finally:
        sock.close()
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def slow_upload(port: int, addr: str, path: str = "/echo", size: int = 4096, pieces: int = 16, pause: float = 0.25):
    """A POST whose body comes in `pieces`, `pause` seconds apart."""
    sock = _request(port, addr, path, method="POST", extra=f"Content-Length: {size}\r\n")
    for _ in range(pieces):
        sock.sendall(b"x" * (size // pieces))
        time.sleep(pause)
    return _status(sock)


def slow_download(port: int, addr: str, path: str = "/download/256"):
    """A large answer read 4 KiB at a time, 50 ms apart."""
    return _status(_request(port, addr, path), pause=0.05, chunk=4096)


def event_stream(port: int, addr: str, path: str = "/events"):
    """A server-sent event stream, read to its end."""
    return _status(_request(port, addr, path, extra="Accept: text/event-stream\r\n"))


def websocket(port: int, addr: str, path: str = "/ws"):
    """A WebSocket (the test app sends its events, then closes), read to its end."""
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    return _status(_request(port, addr, path, extra=extra, connection="Upgrade"))


def give_up(port: int, addr: str, path: str = "/slow", after: float = 1.0):
    """A request whose client goes away before the answer."""
    sock = _request(port, addr, path)
    time.sleep(after)
    sock.close()
    return 0


def burst(port: int, addr: str, path: str, count: int = 60):
    """`count` requests at once on their own connections; their statuses."""
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(_status(_request(port, addr, path)))) for _ in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    return statuses


class Abuse:
    """Each (client, address, args) runs in a loop of its own until `seconds` have passed
    (at most `rounds` times); every status is kept."""

    def __init__(self, plan: list[tuple], seconds: float, rounds: int = 50) -> None:
        self.statuses: dict[str, list[int]] = {}
        self.deadline = time.monotonic() + seconds
        self.threads = [
            threading.Thread(target=self._loop, args=(client, args, rounds), daemon=True) for client, *args in plan
        ]
        for t in self.threads:
            t.start()

    def _loop(self, client, args, rounds: int) -> None:
        kept = self.statuses.setdefault(client.__name__, [])
        for _ in range(rounds):
            if time.monotonic() >= self.deadline:
                return
            try:
                result = client(*args)
            except OSError:
                result = 0
            kept.extend(result if isinstance(result, list) else [result])

    def wait(self) -> dict[str, list[int]]:
        for t in self.threads:
            t.join(TIMEOUT * 2)
        return self.statuses


def gateways(stack) -> str:
    """The edge's networks' gateways as a TOML list: what a client on this machine reaches the
    published ports from, to list in edge.trusted_proxies (then X-Forwarded-For is believed)."""
    edge = stack.ports_holder  # the edge runs in its network namespace
    edge.reload()
    found = sorted({n["Gateway"] for n in edge.attrs["NetworkSettings"]["Networks"].values() if n.get("Gateway")})
    assert found, edge.attrs["NetworkSettings"]["Networks"]  # an empty list would trust no one, silently
    return "[" + ", ".join(f'"{g}"' for g in found) + "]"
