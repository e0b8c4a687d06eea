"""The edge adapter: everything the deployer reads from or writes to the edge container.

The edge's volume (/var/lib/deployer) is the host's truth: the rendered site, the
route state (which colour is live), the lock and the release history. Each
operation is one `docker exec` of a small shell script built here; file updates
are write-to-temp then rename, so a reader never sees half a file.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

from deployer import engine
from deployer.config import Config
from deployer.errors import EdgeError
from deployer.plan import Routes

STATE = "/var/lib/deployer"
SITE = f"{STATE}/site.conf"
ROUTES = f"{STATE}/routes"
HISTORY = f"{STATE}/history.jsonl"
LOCK = f"{STATE}/lock"
LIVE_PORT = 80
PREVIEW_PORT = 8081


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_atomic_script(path: str, content: str) -> str:
    """Shell that writes content to path through a temp file, fsync and rename."""
    tmp = f"{path}.tmp.$$"
    return (
        f"printf %s {shlex.quote(_b64(content))} | base64 -d > {tmp} && sync {tmp} && mv -f {tmp} {path}"
    )


def apply_site_script(content: str) -> str:
    """Test the candidate with `nginx -t`, swap it in, reload; put the old one back if reload fails."""
    return "\n".join(
        [
            "set -e",
            f"printf %s {shlex.quote(_b64(content))} | base64 -d > {SITE}.new",
            f"if cmp -s {SITE}.new {SITE}; then rm -f {SITE}.new; echo unchanged; exit 0; fi",
            f"if ! nginx -t -q -c /etc/nginx/nginx-candidate.conf 2>&1; then rm -f {SITE}.new; exit 10; fi",
            f"cp -p {SITE} {SITE}.prev 2>/dev/null || true",
            f"sync {SITE}.new && mv -f {SITE}.new {SITE}",
            "if ! nginx -s reload 2>&1; then",
            f"  mv -f {SITE}.prev {SITE}; nginx -s reload || true; exit 11",
            "fi",
            "echo reloaded",
        ]
    )


@dataclass(frozen=True)
class Edge:
    config: Config

    @property
    def container(self) -> str:
        return self.config.edge_container

    def run(self, script: str, *, step: str) -> engine.ExecResult:
        return engine.exec_in(self.container, ["sh", "-c", script], step=step)

    # -- route state ---------------------------------------------------------
    def routes(self, *, step: str = "read routes") -> Routes:
        result = self.run(f"cat {ROUTES} 2>/dev/null || true", step=step)
        return Routes.parse(result.stdout)

    def set_routes(self, routes: Routes, *, step: str) -> None:
        result = self.run(write_atomic_script(ROUTES, routes.render()), step=step)
        if result.exit_code != 0:
            raise EdgeError(f"could not write the route state: {result.stderr.strip()}", step=step)

    # -- site config ---------------------------------------------------------
    def apply_site(self, content: str, *, step: str) -> bool:
        """Returns True when nginx was reloaded, False when the site was unchanged."""
        result = self.run(apply_site_script(content), step=step)
        output = (result.stdout + result.stderr).strip()
        if result.exit_code == 10:
            raise EdgeError(
                "nginx -t rejected the rendered site config; the live config is untouched",
                step=step,
                logs=output,
            )
        if result.exit_code != 0:
            raise EdgeError("nginx reload failed; the previous site config was put back", step=step, logs=output)
        return output.endswith("reloaded")

    def site(self) -> str:
        return self.run(f"cat {SITE}", step="read site").stdout

    # -- history -------------------------------------------------------------
    def append_history(self, line: str, *, step: str = "record") -> None:
        script = f"printf '%s\\n' {shlex.quote(line)} >> {HISTORY} && sync {HISTORY}"
        result = self.run(script, step=step)
        if result.exit_code != 0:
            raise EdgeError(f"could not append to the history: {result.stderr.strip()}", step=step)

    def history(self, last: int = 10) -> list[str]:
        out = self.run(f"tail -n {int(last)} {HISTORY} 2>/dev/null || true", step="read history").stdout
        return [line for line in out.splitlines() if line.strip()]

    # -- lock ----------------------------------------------------------------
    def try_lock(self, holder: str) -> str | None:
        """Create the lock atomically. Returns None on success, else the current holder's record."""
        script = (
            f"if mkdir {LOCK} 2>/dev/null; then {write_atomic_script(LOCK + '/holder', holder)} && echo taken; "
            f"else cat {LOCK}/holder 2>/dev/null || echo '{{}}'; fi"
        )
        out = self.run(script, step="lock").stdout.strip()
        return None if out == "taken" else out

    def read_lock(self) -> str | None:
        out = self.run(f"[ -d {LOCK} ] && (cat {LOCK}/holder 2>/dev/null || echo '{{}}')", step="lock").stdout
        return out.strip() or None

    def unlock(self, token: str | None = None) -> bool:
        """Remove the lock; with a token, only when that token still holds it."""
        if token is None:
            script = f"rm -rf {LOCK} && echo removed"
        else:
            script = f"grep -q {shlex.quote(token)} {LOCK}/holder 2>/dev/null && rm -rf {LOCK} && echo removed"
        return self.run(script, step="unlock").stdout.strip() == "removed"

    # -- addresses -----------------------------------------------------------
    def urls(self) -> tuple[str, str]:
        """(live, preview) base URLs on this host, from the edge's published ports."""
        attrs = engine.container_state(self.container)
        if attrs is None or not (attrs.get("State") or {}).get("Running"):
            raise EdgeError(f"the edge {self.container} is not running (run `deployer up`)", step="edge")
        live = engine.published_port(attrs, LIVE_PORT)
        preview = engine.published_port(attrs, PREVIEW_PORT)
        return f"http://127.0.0.1:{live}", f"http://127.0.0.1:{preview}"
