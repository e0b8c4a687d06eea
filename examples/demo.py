"""The demo release of the bundled example, as a user would run it (`make demo`).

Builds v1 and v2, brings up the edge and database, releases v1, writes items,
releases v2 while a background client keeps requesting, shows that the items
survived and that search still ranks them, switches back to v1, and prints
`deployer status` and the number of failed requests. It runs again on a demo that
is up. It exits 1 when an item was lost, a request failed or the switch back did not
take, so the test suite runs it as it is (tests/integration/test_example_stack.py).

    python examples/demo.py [CONFIG]    (default: examples/demo.toml)
    python examples/demo.py --down      (`make demo-down`: remove it, database included)

examples/demo.toml is the annotated example (deployer.toml, which sets no project.id: a
copy of it must get its own) with the demo's own project.id, written on every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
DEMO_ID = "shopdemo2026"  # the demo's own deployment id
DEMO_CONFIG = HERE / "demo.toml"
CONFIG = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "--down" else str(DEMO_CONFIG)
ITEMS = ["green apple", "red apple pie", "apple crumble", "car engine oil", "bicycle chain grease"]


def deployer(*args: str) -> None:
    print(f"\n$ deployer {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "deployer", *args, "--config", CONFIG])
    if result.returncode != 0:
        sys.exit(f"demo stopped: `deployer {' '.join(args)}` exited with {result.returncode}")


class Traffic(threading.Thread):
    """Light background traffic through the live route; counts what fails."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.ok, self.failed, self.versions = base, 0, 0, set()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                for path in ("/api/version", "/", "/api/items"):
                    try:
                        r = client.get(self.base + path)
                        r.raise_for_status()
                        self.ok += 1
                        if path == "/api/version":
                            self.versions.add(r.json()["version"])
                    except httpx.HTTPError:
                        self.failed += 1
                time.sleep(0.05)


def status() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "deployer", "status", "--json", "--config", CONFIG], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"demo stopped: `deployer status --json` exited with {out.returncode}")
    return json.loads(out.stdout)


def check(ok: bool, problem: str) -> None:
    if not ok:
        sys.exit(f"demo failed: {problem}")


def write_demo_config() -> None:
    """examples/demo.toml: the annotated example with the demo's project.id."""
    text = (HERE / "deployer.toml").read_text(encoding="utf-8")
    placeholder = '# id = "<your own random id>"'
    if placeholder not in text:
        sys.exit(f"demo stopped: examples/deployer.toml no longer holds {placeholder!r}")
    DEMO_CONFIG.write_text(text.replace(placeholder, f'id = "{DEMO_ID}"', 1), encoding="utf-8")


def main() -> None:
    deployer("build", "v1")
    deployer("build", "v2")
    deployer("up")
    # Run again on a demo that is up, v1 goes to the idle colour; with nothing live to go
    # back to, or no traffic yet, a watch has nothing to judge.
    deployer("release", "v1", "--watch", "0")
    now = status()
    v1_colour = now["live"]
    base = f"http://127.0.0.1:{now['edge']['live_port']}"  # the port the engine published
    with httpx.Client(base_url=base, timeout=10) as client:
        there = {item["name"] for item in client.get("/api/items").json()}
        for name in ITEMS:
            if name not in there:
                client.post("/api/items", json={"name": name}).raise_for_status()
        print(f"\n{len(ITEMS)} items stored through {base}/api/items")
        traffic = Traffic(base)
        traffic.start()
        deployer("release", "v2", "--watch", "20s")  # judged on the traffic of the background client
        print(f"\nlive now answers {client.get('/api/version').json()}")
        names = [item["name"] for item in client.get("/api/items").json()]
        found = [n for n in ITEMS if n in names]
        top = client.get("/api/items/search", params={"q": "green apple", "k": 3}).json()
        print(f"after v2: {len(found)}/{len(ITEMS)} items are still there; search 'green apple' ->", end=" ")
        print(", ".join(hit["name"] for hit in top))
        check(len(found) == len(ITEMS), f"items lost in the release of v2: {sorted(set(ITEMS) - set(found))}")
        deployer("switch", "--to", v1_colour)
        answer = client.get("/api/version").json()
        print(f"\nlive now answers {answer}")
        traffic.stop.set()
        traffic.join()
    check(answer.get("version") == "v1", f"the switch back to {v1_colour} does not serve v1")
    deployer("status")
    print(
        f"\nbackground client: {traffic.ok} requests, {traffic.failed} failed, versions seen {sorted(traffic.versions)}"
    )
    check(traffic.failed == 0, f"{traffic.failed} requests of the background client failed")
    print(f"the demo is running at {base} — run `make demo` again, or remove it with `make demo-down`")


if __name__ == "__main__":
    if str(DEMO_CONFIG) == CONFIG:
        write_demo_config()
    if sys.argv[1:] == ["--down"]:
        deployer("down", "--volumes", "--yes", "--no-backup")
        sys.exit(0)
    try:
        main()
    except httpx.HTTPError as exc:
        sys.exit(f"demo failed: a request through the live route: {type(exc).__name__}: {exc}")
