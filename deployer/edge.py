"""The edge adapter: everything the deployer reads from or writes to the edge container.

The edge's volume (/var/lib/deployer) is the host's truth: the rendered site, the
route state (which colour is live), the lock and the release history. Each
operation is one `docker exec` of a small shell script built here; file updates
are write-to-temp then rename, so a reader never sees half a file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from deployer import edge_scripts as scripts
from deployer import engine
from deployer.config import Config
from deployer.edge_scripts import HISTORY, LOCK, ROUTES, SITE
from deployer.errors import EdgeError, LockError, SwitchError
from deployer.plan import Routes

LIVE_PORT = 80
PREVIEW_PORT = 8081


@dataclass(frozen=True)
class Switched:
    """The outcome of a switch script: 'already' live, or switched from `previous`."""

    already: bool
    previous: str


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
        result = self.run(scripts.write_atomic(ROUTES, routes.render()), step=step)
        if result.exit_code != 0:
            raise EdgeError(f"could not write the route state: {result.stderr.strip()}", step=step)

    # -- switch and commit ---------------------------------------------------
    def switch(self, target: str, target_host: str, holder: str, token: str, probes: list[str], verify: list[str],
               history_line: str, timeout: float) -> Switched:
        script = scripts.switch(target, target_host, holder, token, probes, verify, history_line, timeout)
        result = self.run(script, step="switch")
        out = result.stdout
        probes_seen = [line for line in out.splitlines() if line.startswith("probe ")]
        if result.exit_code == scripts.LOCK_HELD:
            from deployer.lock import describe_holder

            record = out.strip().partition(" ")[2]
            raise LockError(
                "another release or switch holds the lock: "
                + describe_holder(base64.b64decode(record).decode(errors="replace") if record else "{}"),
                step="lock",
            )
        if result.exit_code == scripts.TARGET_UNHEALTHY:
            bad = [p for p in probes_seen if f"[{target}]" not in p or not p.split()[1].startswith(("2", "3"))]
            raise SwitchError(f"cannot switch to {target}: it is not healthy: {'; '.join(bad)}", step="check")
        if result.exit_code == scripts.VERIFY_FAILED:
            raise EdgeError(
                f"{target} did not answer through the live route; the previous routes are back: {probes_seen[-1:]}",
                step="verify",
            )
        if result.exit_code != 0:
            raise EdgeError(f"switch failed in the edge: {(result.stderr or out).strip()}", step="switch")
        last = out.strip().splitlines()[-1] if out.strip() else ""
        return Switched(already=last == "already", previous=last.rpartition(" ")[2] if last != "already" else target)

    def commit(
        self, new: Routes, old: Routes, verify: list[str], history_line: str, token: str, timeout: float, *, step: str
    ) -> None:
        result = self.run(scripts.commit(new, old, verify, history_line, token, timeout), step=step)
        if result.exit_code == scripts.VERIFY_FAILED:
            failed = [line for line in result.stdout.splitlines() if line.startswith("probe ")]
            raise EdgeError(
                f"{new.live} did not answer through the live route; the previous routes are back: {failed[-1:]}",
                step="verify",
            )
        if result.exit_code != 0 or "committed" not in result.stdout:
            raise EdgeError(f"switching routes failed: {result.stderr.strip() or result.stdout.strip()}", step=step)

    def take_lock(self, holder: str) -> Routes:
        """Take the lock and read the routes in one exec; LockError when someone holds it."""
        result = self.run(f"{scripts.take_lock(holder)}\ncat {ROUTES} 2>/dev/null || true", step="lock")
        if result.exit_code == scripts.LOCK_HELD:
            from deployer.lock import describe_holder

            record = result.stdout.strip().partition(" ")[2]
            text = base64.b64decode(record).decode(errors="replace") if record else "{}"
            raise LockError(f"another release or switch holds the lock: {describe_holder(text)}", step="lock")
        if result.exit_code != 0:
            raise LockError(f"could not take the lock: {result.stderr.strip()}", step="lock")
        return Routes.parse(result.stdout)

    # -- site config ---------------------------------------------------------
    def apply_site(self, content: str, *, step: str) -> bool:
        """Returns True when nginx was reloaded, False when the site was unchanged."""
        result = self.run(scripts.apply_site(content), step=step)
        output = (result.stdout + result.stderr).strip()
        if result.exit_code == scripts.SITE_REJECTED:
            raise EdgeError(
                "nginx -t rejected the rendered site config; the live config is untouched",
                step=step,
                logs=output,
            )
        if result.exit_code != 0:
            raise EdgeError("nginx reload failed; the previous site config was put back", step=step, logs=output)
        return output.endswith("reloaded")

    def history(self, last: int = 10) -> list[str]:
        out = self.run(f"tail -n {int(last)} {HISTORY} 2>/dev/null || true", step="read history").stdout
        return [line for line in out.splitlines() if line.strip()]

    # -- lock ----------------------------------------------------------------
    def read_lock(self) -> str | None:
        out = self.run(f"[ -d {LOCK} ] && (cat {LOCK}/holder 2>/dev/null || echo '{{}}')", step="lock").stdout
        return out.strip() or None

    def unlock(self, token: str | None = None) -> bool:
        """Remove the lock; with a token, only when that token still holds it."""
        if token is None:
            script = f"rm -rf {LOCK} && echo removed"
        else:
            script = f"{scripts.free_lock(token)} && echo removed"
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
