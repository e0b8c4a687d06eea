"""Pure builders of the shell scripts run inside the edge container (one `docker exec` each).

Nothing here does I/O: each function returns a script, and the unit tests assert
what it contains. Every file update is write-to-temp, fsync, rename, so nginx
(and any reader) never sees half a file. Scripts carry no secret.
"""

from __future__ import annotations

import base64
import shlex

from deployer.plan import Routes

STATE = "/var/lib/deployer"
SITE = f"{STATE}/site.conf"
ROUTES = f"{STATE}/routes"
HISTORY = f"{STATE}/history.jsonl"
LOCK = f"{STATE}/lock"
PREVIOUS = "__PREVIOUS__"  # placeholder in a switch's history line, filled in by the script

# Exit codes of the scripts, read by deployer.edge.
SITE_REJECTED, RELOAD_FAILED = 10, 11
VERIFY_FAILED, LOCK_HELD, TARGET_UNHEALTHY = 12, 20, 21


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_atomic(path: str, content: str) -> str:
    tmp = f"{path}.tmp.$$"
    return f"printf %s {shlex.quote(_b64(content))} | base64 -d > {tmp} && sync {tmp} && mv -f {tmp} {path}"


def probe(urls: list[str], colour: str, timeout: float) -> str:
    """One curl over all URLs; prints `probe <code> [<colour>] <url>` for each and fails
    unless every answer is 2xx/3xx and carries X-Deployer-Colour: <colour>."""
    if not urls:
        return "true"
    outputs = " ".join(f"-o /dev/null {shlex.quote(u)}" for u in urls)
    return (
        f"curl -s --max-time {timeout:g} -w 'probe %{{http_code}} [%header{{x-deployer-colour}}] %{{url}}\\n' {outputs}"
        f" | awk -v c='[{colour}]' '{{ print; if ($2 < 200 || $2 >= 400 || $3 != c) bad = 1 }} END {{ exit bad }}'"
    )


def take_lock(holder: str) -> str:
    """mkdir is atomic: the first caller wins; later ones print the holder and exit LOCK_HELD."""
    return "\n".join(
        [
            f'if ! mkdir {LOCK} 2>/dev/null; then echo "held $(base64 -w0 {LOCK}/holder 2>/dev/null)"; exit {LOCK_HELD}; fi',
            write_atomic(f"{LOCK}/holder", holder),
        ]
    )


def free_lock(token: str) -> str:
    """Remove the lock only while this token holds it (a broken and re-taken lock stays)."""
    return f"grep -q {shlex.quote(token)} {LOCK}/holder 2>/dev/null && rm -rf {LOCK}"


def append_history(line: str) -> str:
    return f"printf '%s\\n' {shlex.quote(line)} >> {HISTORY}"


def apply_site(content: str) -> str:
    """`nginx -t` the candidate, swap it in and reload; put the old one back if the reload fails."""
    return "\n".join(
        [
            "set -e",
            f"printf %s {shlex.quote(_b64(content))} | base64 -d > {SITE}.new",
            f"if cmp -s {SITE}.new {SITE}; then rm -f {SITE}.new; echo unchanged; exit 0; fi",
            f"if ! nginx -t -q -c /etc/nginx/nginx-candidate.conf 2>&1; then rm -f {SITE}.new; exit {SITE_REJECTED}; fi",
            f"cp -p {SITE} {SITE}.prev 2>/dev/null || true",
            f"sync {SITE}.new && mv -f {SITE}.new {SITE}",
            "if ! nginx -s reload 2>&1; then",
            f"  mv -f {SITE}.prev {SITE}; nginx -s reload || true; exit {RELOAD_FAILED}",
            "fi",
            "echo reloaded",
        ]
    )


def commit(new: Routes, old: Routes, verify: list[str], history_line: str, token: str, timeout: float) -> str:
    """Swap the routes, verify through the live server (restore on failure), record, free the lock."""
    return "\n".join(
        [
            write_atomic(ROUTES, new.render()),
            f"if ! {{ {probe(verify, new.live, timeout)}; }}; then {write_atomic(ROUTES, old.render())};"
            f" echo restored; exit {VERIFY_FAILED}; fi",
            append_history(history_line),
            free_lock(token),
            "echo committed",
        ]
    )


def switch(
    target: str,
    target_host: str,
    holder: str,
    token: str,
    probes: list[str],
    verify: list[str],
    history_line: str,
    timeout: float,
) -> str:
    """The whole switch in one exec: lock, read routes, probe the target, swap, verify, record, unlock.
    The old live colour (and its release's host) becomes the preview."""
    tmp = f"{ROUTES}.tmp.$$"
    return "\n".join(
        [
            take_lock(holder),
            f"unlock() {{ {free_lock(token)}; }}",
            f"old=$(cat {ROUTES} 2>/dev/null || true)",
            "old_live=$(printf '%s\\n' \"$old\" | sed -n 's/^live=\\(blue\\|green\\)$/\\1/p')",
            "old_host=$(printf '%s\\n' \"$old\" | sed -n 's/^live_host=\\(\\(blue\\|green\\)\\(-[0-9a-f]\\{8\\}\\)\\?\\)$/\\1/p')",
            f'if [ "$old_live" = {target} ]; then unlock; echo already; exit 0; fi',
            f"if ! {{ {probe(probes, target, timeout)}; }}; then unlock; exit {TARGET_UNHEALTHY}; fi",
            f"printf 'live={target}\\npreview=%s\\nlive_host={target_host}\\npreview_host=%s\\n' \"$old_live\" \"$old_host\""
            f" > {tmp} && sync {tmp} && mv -f {tmp} {ROUTES}",
            f"if ! {{ {probe(verify, target, timeout)}; }}; then",
            f"  printf '%s\\n' \"$old\" > {tmp} && sync {tmp} && mv -f {tmp} {ROUTES}; unlock; echo restored;"
            f" exit {VERIFY_FAILED}",
            "fi",
            f"printf '%s\\n' {shlex.quote(history_line)} | sed \"s/{PREVIOUS}/$old_live/\" >> {HISTORY}",
            "unlock",
            'echo "switched from ${old_live:-none}"',
        ]
    )
