"""HTTPS at the edge: what the per-handshake certificate costs, and a renewal under load.

In one run, on one throwaway project (`tl<random>`, removed at the end, even on failure):

- `deployer up` and `deployer release v1` of one service whose image is the fast stand-in
  app (bench/images/fastapp), with `[edge.tls]` (a self-signed EC P-256 certificate made
  here with openssl) and the access log off;
- a peer: the edge's own image with a plain site, the same certificate as a static
  `ssl_certificate`, the same TLS settings (TLS 1.2/1.3, shared session cache, no tickets,
  HTTP/2) and a keep-alive pool to THE SAME app container.

Handshake cost (edge and peer strictly alternating, `--rounds` times):

- `openssl s_time -new` from a container on the edge network: full handshakes one after
  another, for `--seconds`; handshakes per second and the time of one;
- wrk over HTTPS with a new connection (and handshake) per request, 16 connections;
- wrk over HTTPS keep-alive, 50 connections (no handshakes: for reference).

Renewal under load: keep-alive and new-connection-per-request wrk lanes over HTTPS for
`--renew-seconds`, while `deployer edge reload` installs the other of two certificates
every `--every` seconds. Every failed request (socket errors, non-2xx) is counted.

    .venv/bin/python bench/tls.py --json bench/results/tls.json
    .venv/bin/python bench/tls.py --seconds 5 --rounds 1 --renew-seconds 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness
from harness import Lane, wrk_argv

PEER_SITE = """\
upstream bench_app {{ server {address}:8080; keepalive 64; }}
access_log off;
server {{
    listen 443 ssl;
    http2 on;
    ssl_certificate /run/peer.pem;
    ssl_certificate_key /run/peer.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:peer_tls:10m;
    ssl_session_tickets off;
    location / {{
        proxy_pass http://bench_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
    }}
}}
server {{ listen 8081; location = /_deployer/edge {{ return 200 "ok\\n"; }} }}
"""


def make_cert(folder: Path, stem: str) -> tuple[Path, Path]:
    cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        + ["-subj", "/CN=bench.test", "-days", "2", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


class Bench:
    def __init__(self, stack, client, args, load_image: str) -> None:
        self.stack, self.client, self.args, self.load_image = stack, client, args, load_image
        self.network = f"{stack.name}-edge"
        self.rows: list[dict] = []

    def prepare(self) -> None:
        s, folder = self.stack, self.stack.folder
        self.certs = [make_cert(folder, "one"), make_cert(folder, "two")]
        self.install(0)
        s.write_config(
            services=f"""
                [services.backend]
                image = "{s.name}-backend"
                port = 8080
                health = "/health"
                routes = ["/"]
                stop_grace = 5
                """,
            edge='access_log = false\n[edge.tls]\ncert = "live.crt"\nkey = "live.key"\nport = 0\n',
        )
        s.tag("v1", services=("backend",))
        s.ok("up")
        s.ok("release", "v1", "--no-backup")
        app = next(c for c in s.containers("blue") if c.labels.get("deployer.service") == "backend")
        pem = self.certs[0][0].read_text() + self.certs[0][1].read_text()
        self.peer = self.client.containers.run(
            s.edge.image.id,
            [
                "-c",
                'printf "%s" "$SITE" > /var/lib/deployer/site.conf && printf "%s" "$PEM" > /run/peer.pem '
                "&& exec /usr/local/bin/edge-entrypoint",
            ],
            entrypoint=["sh"],
            name=f"{s.name}-bench-peer",
            network=self.network,
            environment={"SITE": PEER_SITE.format(address=harness.address(app, self.network)), "PEM": pem},
            labels={"deployer.project": s.name, "deployer.role": "bench"},
            detach=True,
        )
        harness.wait_http(self.peer, "http://127.0.0.1:8081/_deployer/edge")
        self.hosts = {"edge": s.edge.name, "peer": self.peer.name}

    def install(self, i: int) -> None:
        cert, key = self.certs[i]
        live_cert, live_key = self.stack.folder / "live.crt", self.stack.folder / "live.key"
        live_cert.write_bytes(cert.read_bytes())
        live_key.write_bytes(key.read_bytes())
        live_key.chmod(0o600)

    # -- handshake cost --------------------------------------------------------------
    def s_time(self, proxy: str) -> dict:
        seconds = max(1, round(self.args.seconds))
        out = self.client.containers.run(
            self.stack.edge.image.id,
            ["openssl", "s_time", "-connect", f"{self.hosts[proxy]}:443", "-new", "-time", str(seconds)],
            entrypoint=[],
            network=self.network,
            remove=True,
            labels={"deployer.project": self.stack.name, "deployer.role": "bench"},
        ).decode(errors="replace")
        m = re.search(r"(\d+) connections in ([\d.]+)s", out)
        count, real = (int(m.group(1)), float(m.group(2))) if m else (0, float(seconds))
        rate = count / real if real else 0.0
        return {"kind": "s_time -new", "proxy": proxy, "handshakes": count, "per_second": round(rate, 1),
                "ms_each": round(1000 / rate, 3) if rate else None}  # fmt: skip

    def wrk(self, proxy: str, connections: int, close: bool) -> dict:
        url = f"https://{self.hosts[proxy]}:443/api/version"
        argv = wrk_argv(url, connections=connections, seconds=self.args.seconds, close=close)
        result = Lane(self.client, self.load_image, self.stack.name, self.network, argv,
                      env={"WRK_STATUSES": "1"}).result(timeout=self.args.seconds + 60)  # fmt: skip
        kind = "wrk new connection per request" if close else "wrk keep-alive"
        return {"kind": kind, "proxy": proxy, "connections": connections, **result.row()}

    def handshakes(self) -> None:
        for _ in range(self.args.rounds):
            for proxy in ("edge", "peer"):
                self.rows.append(self.s_time(proxy))
                time.sleep(1)
            for proxy in ("edge", "peer"):
                self.rows.append(self.wrk(proxy, 16, close=True))
                time.sleep(1)
            for proxy in ("edge", "peer"):
                self.rows.append(self.wrk(proxy, 50, close=False))
                time.sleep(1)

    # -- renewal under load ----------------------------------------------------------
    def renewal(self) -> None:
        a = self.args
        url = f"https://{self.hosts['edge']}:443/api/version"
        lanes = {
            "keep-alive": Lane(self.client, self.load_image, self.stack.name, self.network,
                               wrk_argv(url, connections=32, seconds=a.renew_seconds), env={"WRK_STATUSES": "1"}),
            "new connection per request": Lane(self.client, self.load_image, self.stack.name, self.network,
                                               wrk_argv(url, connections=8, seconds=a.renew_seconds, close=True),
                                               env={"WRK_STATUSES": "1"}),
        }  # fmt: skip
        reloads, took = 0, []
        deadline = time.monotonic() + a.renew_seconds - a.every
        time.sleep(a.every)
        while time.monotonic() < deadline:
            self.install((reloads + 1) % 2)
            began = time.monotonic()
            self.stack.ok("edge", "reload")
            took.append(time.monotonic() - began)
            reloads += 1
            time.sleep(max(0.0, a.every - took[-1]))
        for kind, lane in lanes.items():
            r = lane.result(timeout=a.renew_seconds + 60)
            self.rows.append({"kind": f"renewal under load, {kind}", "proxy": "edge", "reloads": reloads,
                              "reload_seconds_max": round(max(took, default=0), 2), **r.row()})  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = [f"{'measure':40} {'proxy':5} {'rate/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'failures':>8}"]
    for r in rows:
        rate = r.get("per_second", r.get("rps"))
        lines.append(
            f"{r['kind'][:40]:40} {r['proxy']:5} {rate:9.1f} {r.get('p50_ms', r.get('ms_each')) or 0:7.2f} "
            f"{r.get('p99_ms', 0) or 0:7.2f} {r.get('failures', 0):8}"
            + (f"  ({r['reloads']} reloads)" if "reloads" in r else "")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--seconds", type=float, default=20, help="length of each handshake-cost run")
    p.add_argument("--rounds", type=int, default=3, help="edge/peer alternations")
    p.add_argument("--renew-seconds", type=float, default=30, help="length of the renewal-under-load run")
    p.add_argument("--every", type=float, default=2, help="seconds between two renewals")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    app_image, load_image = harness.fastapp_image(client), harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="tlsbench-") as tmp:
        stack = Stack(f"tl{uuid.uuid4().hex[:8]}", Path(tmp), client, app_image)
        bench = Bench(stack, client, args, load_image)
        try:
            bench.prepare()
            bench.handshakes()
            bench.renewal()
        finally:
            harness.remove_named(client, f"{stack.name}-bench-")
            stack.destroy()
    print(table(bench.rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json)},
                                         "rows": bench.rows, "table": table(bench.rows)}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
