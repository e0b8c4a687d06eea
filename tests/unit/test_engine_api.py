"""engine_api.py, the standard library's Engine API exec and inspect, against an in-process
server on a unix socket that answers as dockerd does: the multiplexed output split into
stdout and stderr, the exit code read after the stream, and each refusal as the error the
SDK path gives."""

from __future__ import annotations

import json
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from deployer.adapters.engine_api import Api, answer, demux
from deployer.errors import EngineError, UnreachableError


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class Engine(BaseHTTPRequestHandler):
    containers = {"edge": True, "stopped": False}
    seen: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts[0] == "containers":
            name = parts[1]
            if name not in self.containers:
                return self.reply(404, b'{"message": "No such container: ' + name.encode() + b'"}')
            return self.reply(
                200, json.dumps({"Name": "/" + name, "State": {"Running": self.containers[name]}}).encode()
            )
        return self.reply(200, json.dumps({"Running": False, "ExitCode": 3}).encode())  # /exec/<id>/json

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = self.path.strip("/").split("/")
        if parts[0] == "containers":
            name = parts[1]
            if name not in self.containers:
                return self.reply(404, b'{"message": "No such container"}')
            if not self.containers[name]:
                return self.reply(409, json.dumps({"message": f"Container {name} is not running"}).encode())
            self.seen.append(body)
            return self.reply(201, b'{"Id": "e1"}')
        out = frame(1, b"hello ") + frame(2, b"warned\n") + frame(1, b"world\n")
        self.reply(200, out, "application/vnd.docker.raw-stream")


@pytest.fixture
def api(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = socketserver.ThreadingUnixStreamServer(path, Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Api(path, "the test engine", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_exec_splits_the_streams_and_reads_the_exit_code(api):
    result = api.exec("edge", ["sh", "-c", "x"], step="switch", env={"TOKEN": "t"}, user="")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "hello world\n", "warned\n")
    assert Engine.seen[-1]["Cmd"] == ["sh", "-c", "x"] and Engine.seen[-1]["Env"] == ["TOKEN=t"]


def test_refusals_name_the_container_and_the_program(api):
    with pytest.raises(EngineError, match=r"container gone does not exist \(run `deployer up`\)"):
        api.exec("gone", ["sh"], step="switch", env={}, user="")
    with pytest.raises(EngineError, match="cannot run sh in stopped: Container stopped is not running"):
        api.exec("stopped", ["sh"], step="switch", env={}, user="")
    assert api.inspect("gone", step="inspect") is None
    assert api.inspect("edge", step="inspect")["State"]["Running"] is True


def test_no_engine_on_the_socket_is_unreachable(tmp_path):
    with pytest.raises(UnreachableError, match="cannot reach the Docker engine at ssh://h: no Docker socket there"):
        Api(str(tmp_path / "none.sock"), "ssh://h", timeout=5).exec("edge", ["sh"], step="switch", env={}, user="")


def test_demux_keeps_the_order_within_each_stream():
    raw = frame(1, b"a") + frame(2, b"x") + frame(1, b"b") + frame(2, b"y") + b"\x01\x00"  # a cut header is dropped
    assert demux(raw) == (b"ab", b"xy")


def test_an_answer_is_read_by_its_length_its_chunks_or_to_its_end():
    """dockerd sends a length, chunks (a large inspection), or, for an exec's output, the
    raw stream until it closes the connection."""
    sized = b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"Id":"e"}\nextra'
    assert answer(sized) == (201, b'{"Id":"e"}\n')
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n'
    assert answer(chunked) == (200, b'{"a":1}')
    stream = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n" + frame(1, b"\r\n\r\nok")
    assert answer(stream) == (200, frame(1, b"\r\n\r\nok"))


@pytest.mark.parametrize("raw", [b"", b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"])
def test_what_is_not_an_answer_is_a_lost_connection(raw):
    with pytest.raises(ValueError):
        answer(raw)


def test_a_lost_connection_names_the_call(tmp_path):
    path = str(tmp_path / "mute.sock")
    server = socketserver.ThreadingUnixStreamServer(path, socketserver.BaseRequestHandler)  # closes at once
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(
            UnreachableError, match=r"lost the connection to the engine at h: .*\(GET /containers/e/json\)"
        ):
            Api(path, "h", timeout=5).inspect("e", step="inspect")
    finally:
        server.shutdown()
        server.server_close()
