"""Pure builders of the shell scripts that run inside the edge container (one `docker exec` each).

Nothing here does I/O: each function returns a script, and the unit tests assert what it
contains. Every file update is write-to-temp, fsync, rename, then fsync of the folder, so
nginx and every reader see the old file or the new one, never half of one; a change to the
route state is then announced on the edge's control socket, so nginx picks it up at once.
Scripts carry no secret: every value in them ends up in `docker exec`'s argv.
"""

from __future__ import annotations

import base64
import shlex

from deployer.core import edgelayout
from deployer.core import probe as probe_rule
from deployer.core import state as route_state
from deployer.core.edgelayout import CANDIDATE, HOME, SITE, STATE

HISTORY = f"{HOME}/history.jsonl"
DUMPS, DUMPS_KEPT = f"{HOME}/dumps.jsonl", 20  # the status page's last dumps (lua/deployer/page.lua)
LOCK = f"{HOME}/lock"
PREVIOUS = "__PREVIOUS__"  # placeholder in a switch's history line, filled in by the script
CONTROL = f"--unix-socket {edgelayout.CONTROL} http://edge"  # the edge's control server (site.conf.j2)
# A writer waits for /reload's answer. On a swarm, the control answers once every edge replica
# took the new state or all were given the old one back (lua/deployer/sync.lua: two pushes of
# up to 2 s to an edge that does not answer, then one of 0.5 s back), after the publish of a
# read already under way (lua/deployer/state.lua): a writer that gave up sooner would put
# the old state back in its files while the publish may still succeed, and could not say why.
NOTIFY_SECONDS = 20
NOTIFY = f"curl -sf --max-time {NOTIFY_SECONDS} {CONTROL}/reload >/dev/null"
FORGET_METRICS = f"curl -sf --max-time 10 -X POST {CONTROL}/forget-metrics"
SEPARATOR = "@@deployer-state@@"

# Exit codes of the scripts, read by deployer.adapters.edge.
SITE_REJECTED, RELOAD_FAILED = 10, 11
VERIFY_FAILED, NO_RELEASE, LOCK_LOST = 12, 13, 14
LOCK_HELD, TARGET_UNHEALTHY, NOTIFY_FAILED, WRONG_DEPLOYMENT, PENDING = 20, 21, 22, 23, 24
DEPLOYMENT = f"{HOME}/deployment"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_atomic(path: str, content: str) -> str:
    """Write, fsync, rename, fsync the folder (printf, no base64 process unless the text has a NUL)."""
    folder, tmp = path.rsplit("/", 1)[0], f"{path}.tmp.$$"
    data = f"printf %s {shlex.quote(content)}" if "\0" not in content else f"printf %s {_b64(content)} | base64 -d"
    return f"{data} > {tmp} && sync {tmp} && mv -f {tmp} {path} && sync {folder}"


def read_word(var: str, path: str) -> str:
    """Set $var to a file's first line ('' without one), with the shell's `read`: no `cat` process."""
    return f"{var}=; read -r {var} 2>/dev/null < {path}"


def _notify() -> str:
    return f"{NOTIFY} || {{ echo 'the edge did not take the new route state'; exit {NOTIFY_FAILED}; }}"


def check_deployment(deployment: str) -> str:
    """Exit WRONG_DEPLOYMENT (printing the edge's id) unless the edge belongs to this config's deployment."""
    return (
        f"{read_word('have', DEPLOYMENT)}\n"
        f'if [ "$have" != {shlex.quote(deployment)} ]; then echo "deployment $have"; exit {WRONG_DEPLOYMENT}; fi'
    )


def mark_deployment(deployment: str) -> str:
    return write_atomic(DEPLOYMENT, deployment)


def read_state() -> str:
    """Print every route state file (see core.state.parse_dump)."""
    return route_state.dump_files(SEPARATOR)


def write_state(name: str, content: str | None, token: str = "") -> str:
    """Replace (or, with None, remove) one route state file and announce it. With a lock
    token, only while that token holds the lock (exit LOCK_LOST, nothing written, otherwise)."""
    path = f"{STATE}/{name}"
    change = write_atomic(path, content) if content is not None else f"rm -f {path} && sync {STATE}"
    owned = [f"{_owns(token)} || {{ echo 'the lock is no longer ours'; exit {LOCK_LOST}; }}"] if token else []
    return "\n".join([*owned, f"mkdir -p {STATE}", change, _notify()])


# -- lock ---------------------------------------------------------------------------------
#
# The lock is a folder (mkdir is atomic: the first caller wins) holding the holder's record
# and a lease: the epoch second, by the edge's clock, until which the holder is alive. The
# holder renews it while it works; a lock whose lease has passed is stale (its holder was
# killed, on whatever machine) and the next command takes it over, saying whose it was.
#
# `down` holds the lock until the edge is gone: before it removes the edge it closes the lock
# (`closed` names the edge container it was closed in). In that container the lock stays
# held as usual; in a later edge (the volume kept, a new `up`) a closed lock is free: the
# edge that held it, and the `down` that closed it, are gone.
CLOSED = f"{LOCK}/closed"


def _left_by_down() -> str:
    """True when a `down` closed the lock in an edge container that is not this one."""
    return f'[ -f {CLOSED} ] && [ "$(cat {CLOSED})" != "$(cat /etc/hostname)" ]'


def _lease_check() -> str:
    """Sets $lease to the lock's lease end (a lock being created counts as fresh for 10 s)."""
    return f"lease=$(cat {LOCK}/lease 2>/dev/null || echo $(( $(stat -c %Y {LOCK} 2>/dev/null || echo 0) + 10 )))"


def take_lock(holder: str, lease_seconds: int, deployment: str, *, taken: str = "") -> str:
    """Prints `stale <b64 record>` when it took over a stale lock; exits LOCK_HELD with
    `held <seconds left> <b64 record>` when a live holder has it. `taken` runs once the lock
    is this script's, before its record is written."""
    held = f'echo "held $((lease - now)) $(base64 -w0 {LOCK}/holder 2>/dev/null)"; exit {LOCK_HELD}'
    return "\n".join(
        [
            check_deployment(deployment),
            "now=$(date +%s)",
            f"if ! mkdir {LOCK} 2>/dev/null; then",
            # One takeover at a time, the lease read again under it: two commands that both
            # saw the same stale lock must not both take it (the second would move away the
            # fresh lock of the first).
            f"  exec 9>{LOCK}.takeover && flock -w 10 9",
            f"  if ! mkdir {LOCK} 2>/dev/null; then",
            f"    now=$(date +%s); {_lease_check()}",
            f"    if ! {{ {_left_by_down()}; }}; then",
            f'      if [ "$now" -lt "$lease" ]; then {held}; fi',
            f'      echo "stale $(base64 -w0 {LOCK}/holder 2>/dev/null)"',
            "    fi",
            f"    mv {LOCK} {LOCK}.stale.$$ 2>/dev/null && rm -rf {LOCK}.stale.$$",
            f"    if ! mkdir {LOCK} 2>/dev/null; then {_lease_check()}; {held}; fi",
            "  fi",
            "fi",
            *([taken] if taken else []),
            write_atomic(f"{LOCK}/holder", holder),
            f"echo $((now + {int(lease_seconds)})) > {LOCK}/lease",
        ]
    )


def _owns(token: str) -> str:
    """True while the lock's holder record (one line of JSON) names this token."""
    have = read_word("holder", f"{LOCK}/holder")
    return f'{{ {have}; case "$holder" in *{shlex.quote(token)}*) ;; *) false;; esac; }}'


def renew_lock(token: str, lease_seconds: int) -> str:
    return f"{_owns(token)} || exit {LOCK_LOST}\necho $(( $(date +%s) + {int(lease_seconds)} )) > {LOCK}/lease.new && mv -f {LOCK}/lease.new {LOCK}/lease"


def free_lock(token: str) -> str:
    """Remove the lock only while this token holds it (a broken and re-taken lock stays)."""
    return f"{_owns(token)} && rm -rf {LOCK}"


def close_lock(token: str) -> str:
    """`down`, just before the edge goes: the lock stays this token's until the edge is gone,
    and is free in the next edge (exit LOCK_LOST when it is no longer this token's)."""
    return f"{_owns(token)} || exit {LOCK_LOST}\ncat /etc/hostname > {CLOSED}.$$ && mv -f {CLOSED}.$$ {CLOSED}"


def break_lock() -> str:
    return f"rm -rf {LOCK} && echo removed"


def read_lock() -> str:
    """Prints `<seconds left of the lease> <b64 record>`, or nothing when the lock is free."""
    return "\n".join(
        [
            f"[ -d {LOCK} ] || exit 0",
            f"if {_left_by_down()}; then exit 0; fi",
            "now=$(date +%s)",
            _lease_check(),
            f'echo "$((lease - now)) $(base64 -w0 {LOCK}/holder 2>/dev/null)"',
        ]
    )


# -- history ------------------------------------------------------------------------------


def append_history(line: str) -> str:
    return f"printf '%s\\n' {shlex.quote(line)} >> {HISTORY} && sync {HISTORY}"


def read_history(last: int) -> str:
    return f"tail -n {int(last)} {HISTORY} 2>/dev/null || true"


def note_dump(line: str) -> str:
    """One dump's line added to DUMPS, of which the last DUMPS_KEPT stay (readable by nginx)."""
    new = f"{{ tail -n {DUMPS_KEPT - 1} {DUMPS} 2>/dev/null; printf '%s\\n' {shlex.quote(line)}; }} > {DUMPS}.tmp"
    return f"{new} && chmod 644 {DUMPS}.tmp && mv -f {DUMPS}.tmp {DUMPS}"


# -- site ---------------------------------------------------------------------------------


# The pids of nginx's workers that serve the current config (not those that quit after a reload).
_WORKERS = (
    "workers() { for f in /proc/[0-9]*/cmdline; do { tr '\\0' ' ' < \"$f\"; } 2>/dev/null"
    " | grep -q '^nginx: worker process *$' && echo \"${f%/cmdline}\"; done; true; }"
)


def _reloaded(limit: float = 10) -> str:
    """Signal a reload, then wait until no worker of before it serves: `nginx -s reload` only
    sends the signal, and a master that cannot apply the new config keeps its old workers."""
    return "\n".join(
        [
            'before=" $(workers | tr "\\n" " ") "',
            "nginx -s reload 2>&1 || return 1",
            f"for i in $(seq {round(limit / 0.1)}); do",
            "  now=$(workers); fresh=${now:+yes}",
            '  for p in $now; do case "$before" in *" $p "*) fresh=;; esac; done',
            '  [ -n "$fresh" ] && return 0',
            "  sleep 0.1",
            "done",
            "echo 'nginx kept its workers of the previous config (see the edge logs: docker logs)'; return 1",
        ]
    )


def apply_site(content: str) -> str:
    """`nginx -t` the candidate, swap it in and reload, and wait until the new workers serve;
    put the old one back if the reload fails."""
    return "\n".join(
        [
            "set -e",
            _WORKERS,
            f"reload() {{\n{_reloaded()}\n}}",
            f"printf %s {shlex.quote(_b64(content))} | base64 -d > {SITE}.new",
            f"if cmp -s {SITE}.new {SITE}; then rm -f {SITE}.new; echo unchanged; exit 0; fi",
            f"if ! nginx -t -q -c {CANDIDATE} 2>&1; then rm -f {SITE}.new; exit {SITE_REJECTED}; fi",
            f"cp -p {SITE} {SITE}.prev 2>/dev/null || true",
            f"sync {SITE}.new && mv -f {SITE}.new {SITE} && sync {HOME}",
            "if ! reload; then",
            f"  mv -f {SITE}.prev {SITE}; reload || true; exit {RELOAD_FAILED}",
            "fi",
            "echo reloaded",
        ]
    )


# -- switching ----------------------------------------------------------------------------


def _set_live(colour_expr: str) -> str:
    """Write `live` from a shell expression (a literal colour or "$old")."""
    tmp = f"{STATE}/live.tmp.$$"
    return f'printf "%s\\n" {colour_expr} > {tmp} && sync {tmp} && mv -f {tmp} {STATE}/live && sync {STATE}'


def commit(colour: str, verify: list[probe_rule.Probe], history_line: str, token: str, timeout: float) -> str:
    """The last step of a release: while this token still holds the lock, make `colour`
    live, verify through the live server (put the old live colour back on failure),
    record the release and free the lock."""
    return "\n".join(
        [
            f"{_owns(token)} || {{ echo 'the lock is no longer ours'; exit {LOCK_LOST}; }}",
            f"old=$(cat {STATE}/live 2>/dev/null || true)",
            _set_live(colour),
            f"{NOTIFY} || {{ {_set_live(chr(34) + '$old' + chr(34))}; echo 'the edge did not take the new route state'; exit {NOTIFY_FAILED}; }}",
            "sleep ${DEPLOYER_TEST_COMMIT_PAUSE:-0}",
            f"if ! {{ {probe_rule.script(verify, timeout)}; }}; then",
            f"  {_set_live(chr(34) + '$old' + chr(34))}; {NOTIFY}; echo restored; exit {VERIFY_FAILED}",
            "fi",
            append_history(history_line),
            f"rm -f {STATE}/pending && sync {STATE}",
            free_lock(token),
            "echo committed",
        ]
    )


# -- replacing the edge (flows/edge_roll.py) --------------------------------------------------
DRAIN = f"curl -sf --max-time 5 -X POST {CONTROL}/drain"
# A new edge's own nginx answers (its control socket is its own; its ports are shared), within 10 s.
ANSWERS = f"for i in $(seq 50); do curl -sf --max-time 2 {CONTROL}/drain >/dev/null && exit 0; sleep 0.2; done; exit 1"


def stage_site(content: str) -> str:
    """Put a new site in place without a reload: the edge that starts next reads it, the one
    it replaces keeps what it loaded (`nginx -t` passed in a throwaway edge of the new image)."""
    return "\n".join(
        [
            f"printf %s {shlex.quote(_b64(content))} | base64 -d > {SITE}.new",
            f"if cmp -s {SITE}.new {SITE}; then rm -f {SITE}.new; echo unchanged; exit 0; fi",
            f"cp -p {SITE} {SITE}.prev 2>/dev/null || true",
            f"sync {SITE}.new && mv -f {SITE}.new {SITE} && sync {HOME}",
            "echo staged",
        ]
    )


UNSTAGE_SITE = f"if [ -f {SITE}.prev ]; then mv -f {SITE}.prev {SITE} && sync {HOME}; fi"


def drained(limit: float, interval: float = 0.2) -> str:
    """Wait, at most `limit` seconds, until a draining edge has no client connection that
    waits (an idle keep-alive one, or one that has asked nothing yet); print its last
    "<active> <waiting>" (only this request is active when nothing else is)."""
    return "\n".join(
        [
            f"for i in $(seq {max(1, round(limit / interval))}); do",
            f"  now=$(curl -sf --max-time 2 {CONTROL}/drain) || now=''",
            '  case "$now" in *" 0") break;; esac',
            f"  sleep {interval:g}",
            "done",
            'echo "$now"',
        ]
    )
