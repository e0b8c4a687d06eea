"""Load clients for the zero-downtime benchmark and test: three kinds of HTTP client at once.

Standard library only (threads + http.client), so that connection reuse and retries
are exactly what each kind claims:

- keepalive: one persistent connection per client; any error is a failed request, never retried.
- browser:   one persistent connection; an idempotent request (GET) whose *reused* connection
             closes before any byte of the response is retried once on a new connection, as
             browsers do. A POST is never retried.
- fresh:     a new connection (``Connection: close``) for every request.

Each kind runs ``clients`` fast clients (GET backend, GET frontend, POST backend, paced to
``rate`` requests per second each) and ``slow`` clients that loop on the test app's slow
path (``/api/slow``, ~2 s), so that long requests are in flight at every switch.

Every request is recorded with which version and colour answered it. ``analyse`` turns the
records plus the timeline of events (switches, releases, reloads, recreates) into counts:
failures, answers from the old version after an event returned ("backwards"), answers whose
edge colour disagrees with the app's ("mixed"), and latency away from and near events.

Traffic goes only to the base URL given (the edge's published port on 127.0.0.1). Every loop
stops by itself after ``duration`` seconds or ``max_requests`` requests per client.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

KINDS = ("keepalive", "browser", "fresh")
IDEMPOTENT = {"GET", "HEAD"}
POST_BODY = b'{"payload":"' + b"x" * 200 + b'"}'
FAST_MIX = (("GET", "/api/version"), ("GET", "/"), ("POST", "/api/echo"), ("GET", "/api/version"))
SLOW_MIX = (("GET", "/api/slow"), ("POST", "/api/slow"))
NEAR_EVENT = 1.0  # seconds: a request starting this close to an event counts as "near" it


@dataclass
class Record:
    kind: str
    lane: str  # "fast" or "slow"
    method: str
    path: str
    start: float  # time.monotonic()
    end: float
    status: int = 0  # 0 when no response arrived
    version: str = ""  # X-App-Version
    colour: str = ""  # X-App-Colour
    edge_colour: str = ""  # X-Deployer-Colour
    error: str = ""  # exception name when the request failed without a response
    retried: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.error) or not 200 <= self.status < 300

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class Event:
    """Something done to the deployment while the load runs, and what must answer after it."""

    peer: str  # deployer | reload | recreate
    action: str  # switch | release | reload | recreate
    start: float
    end: float
    colour: str  # the colour that must answer once the action has returned
    version: str  # the version that must answer once the action has returned
    ok: bool = True
    detail: dict = field(default_factory=dict)


class _Closed(Exception):
    """The reused connection closed before any byte of the response (safe to retry)."""


class Load:
    """Start the clients with start(); stop() (or the deadline) ends them and returns the records."""

    def __init__(
        self,
        base_url: str,
        *,
        clients: int = 4,
        slow: int = 1,
        rate: float = 20.0,
        duration: float = 120.0,
        max_requests: int = 100_000,
        timeout: float = 15.0,
        kinds: tuple[str, ...] = KINDS,
        forwarded_for: str = "",
    ) -> None:
        """`forwarded_for`: an X-Forwarded-For for each client, "{n}" its number from 1
        (many client addresses behind one trusted proxy; empty: none)."""
        parts = urlsplit(base_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"load goes to this machine's loopback only, not {base_url}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.clients, self.slow, self.rate = clients, slow, rate
        self.duration, self.max_requests, self.timeout = duration, max_requests, timeout
        self.kinds, self.forwarded_for = kinds, forwarded_for
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Load:
        deadline = time.monotonic() + self.duration
        for kind in self.kinds:
            for i in range(self.clients):
                self._spawn(kind, "fast", i, deadline)
            for i in range(self.slow):
                self._spawn(kind, "slow", i, deadline)
        return self

    def stop(self) -> list[Record]:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        with self._lock:
            return sorted(self.records, key=lambda r: r.start)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def _spawn(self, kind: str, lane: str, index: int, deadline: float) -> None:
        number = len(self._threads) + 1
        t = threading.Thread(
            target=self._loop,
            args=(kind, lane, index, deadline, number),
            daemon=True,
            name=f"load-{kind}-{lane}-{index}",
        )
        self._threads.append(t)
        t.start()

    # -- one client ------------------------------------------------------------
    def _loop(self, kind: str, lane: str, index: int, deadline: float, number: int) -> None:
        mix = FAST_MIX if lane == "fast" else SLOW_MIX
        interval = 1.0 / self.rate if self.rate > 0 else 0.0  # a slow lane that fails fast must not spin
        client = _Client(
            self.host, self.port, self.timeout, persistent=kind != "fresh", retry_idempotent=kind == "browser"
        )
        if self.forwarded_for:
            client.forwarded_for = self.forwarded_for.format(n=number)
        n = index  # stagger the mix between clients
        try:
            while not self._stop.is_set() and time.monotonic() < deadline and n - index < self.max_requests:
                began = time.monotonic()
                method, path = mix[n % len(mix)]
                record = client.request(kind, lane, method, path)
                with self._lock:
                    self.records.append(record)
                n += 1
                pause = interval - (time.monotonic() - began)
                if pause > 0:
                    self._stop.wait(pause)
        finally:
            client.close()


class _Client:
    def __init__(self, host: str, port: int, timeout: float, *, persistent: bool, retry_idempotent: bool) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.persistent, self.retry_idempotent = persistent, retry_idempotent
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0  # requests answered on the current connection
        self.forwarded_for = ""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, self.used = None, 0

    def request(self, kind: str, lane: str, method: str, path: str) -> Record:
        record = Record(kind, lane, method, path, start=time.monotonic(), end=0.0)
        try:
            try:
                self._exchange(record, method, path)
            except _Closed:
                if not (self.retry_idempotent and method in IDEMPOTENT):
                    raise
                record.retried = True
                self._exchange(record, method, path)
        except (OSError, http.client.HTTPException, _Closed) as exc:
            cause = exc.__cause__ if isinstance(exc, _Closed) and exc.__cause__ else exc
            record.error = type(cause).__name__
            self.close()
        record.end = time.monotonic()
        return record

    def _exchange(self, record: Record, method: str, path: str) -> None:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.used = 0
        reused = self.used > 0
        headers = {"Connection": "keep-alive" if self.persistent else "close"}
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        body = None
        if method == "POST":
            body = POST_BODY
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            # Nothing of the response arrived. On a reused connection this is the race
            # between the server closing an idle keep-alive connection and our request.
            self.close()
            if reused:
                raise _Closed() from exc
            raise
        response.read()
        record.status = response.status
        record.version = response.getheader("X-App-Version", "")
        record.colour = response.getheader("X-App-Colour", "")
        record.edge_colour = response.getheader("X-Deployer-Colour", "")
        self.used += 1
        if not self.persistent or response.will_close:
            self.close()


# -- analysis -------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def near_event(record: Record, events: list[Event], margin: float = NEAR_EVENT) -> bool:
    return any(e.start - margin <= record.start <= e.end + margin for e in events)


def expected_after(record: Record, events: list[Event]) -> Event | None:
    """The last event that had returned before this request started, unless another had begun since."""
    last = None
    for e in events:
        if e.start <= record.start:
            last = e
    if last is None or record.start <= last.end:
        return None  # before any event, or while an event was in progress
    return last


def is_backwards(record: Record, events: list[Event]) -> bool:
    """Answered by another colour or version than the one made live by the last returned event."""
    if record.failed:
        return False
    e = expected_after(record, events)
    return e is not None and (record.colour != e.colour or record.version != e.version)


def is_mixed(record: Record, events: list[Event]) -> bool:
    """The edge says one colour, the app another, outside any event window."""
    if record.failed or not record.edge_colour:
        return False
    overlaps = any(record.start <= e.end and record.end >= e.start for e in events)
    return not overlaps and record.edge_colour != record.colour


def analyse(records: list[Record], events: list[Event], kinds: tuple[str, ...] = KINDS) -> dict[str, dict]:
    """Per client kind: requests, failures, backwards and mixed answers, latency away from/near events."""
    out: dict[str, dict] = {}
    for kind in kinds:
        mine = [r for r in records if r.kind == kind]
        fast_ok = [r for r in mine if r.lane == "fast" and not r.failed]
        near = [r.latency for r in fast_ok if near_event(r, events)]
        away = [r.latency for r in fast_ok if not near_event(r, events)]
        slow = [r for r in mine if r.lane == "slow"]
        out[kind] = {
            "requests": len(mine),
            "failures": sum(r.failed for r in mine),
            "connection_errors": sum(bool(r.error) for r in mine),
            "non_2xx": sum(not r.error and not 200 <= r.status < 300 for r in mine),
            "retried": sum(r.retried for r in mine),
            "backwards": sum(is_backwards(r, events) for r in mine),
            "mixed": sum(is_mixed(r, events) for r in mine),
            "slow_requests": len(slow),
            "slow_failures": sum(r.failed for r in slow),
            "p50_away_ms": _ms(percentile(away, 50)),
            "p99_away_ms": _ms(percentile(away, 99)),
            "p50_near_ms": _ms(percentile(near, 50)),
            "p99_near_ms": _ms(percentile(near, 99)),
            "errors": _error_counts(mine),
        }
    return out


def rate_around(records: list[Record], event: Event, margin: float = NEAR_EVENT) -> float:
    """Requests per second started in the event's window (its duration plus margin either side)."""
    lo, hi = event.start - margin, event.end + margin
    return sum(lo <= r.start <= hi for r in records) / (hi - lo)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _error_counts(records: list[Record]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        if r.failed:
            key = r.error or f"HTTP {r.status}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def to_json(records: list[Record], origin: float) -> list[dict]:
    return [{**asdict(r), "start": round(r.start - origin, 4), "end": round(r.end - origin, 4)} for r in records]
