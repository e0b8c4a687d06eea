"""The script of `deployer switch`: the whole switch in one exec in the edge (core/scripts.py
has the lock, the route state writes and the notice it is made of).

Its processes are what a switch waits for inside the edge, so it starts few and waits for
fewer: the shell's own `read` for the small files, printf for the history line, the target's
health probe started as soon as the lock is taken (judged where it always was, after the
checks that may end the switch first), and one curl for both the control's /reload and the
probes through the live route that follow it (`--next`: the same order, the reload's answer
judged first).
"""

from __future__ import annotations

import shlex

from deployer.core import probe as probe_rule
from deployer.core.edgelayout import CONTROL, STATE
from deployer.core.scripts import (
    HISTORY,
    LOCK,
    NO_RELEASE,
    NOTIFY,
    NOTIFY_FAILED,
    NOTIFY_SECONDS,
    PENDING,
    PREVIOUS,
    TARGET_UNHEALTHY,
    VERIFY_FAILED,
    _set_live,
    free_lock,
    read_word,
    take_lock,
)

# The control's /reload as the first transfer of a curl whose next ones are the probes: its
# answer is the line `notified <HTTP status>` (000: no answer).
NOTIFIED = (
    f"-s --max-time {NOTIFY_SECONDS} --unix-socket {CONTROL} -o /dev/null -w 'notified %{{http_code}}\\n' "
    "http://edge/reload"
)


def switch(
    target: str,
    holder: str,
    token: str,
    lease_seconds: int,
    probes: list[probe_rule.Probe],
    verify: list[probe_rule.Probe],
    history_line: str,
    timeout: float,
    deployment: str = "",
) -> str:
    """The whole switch in one exec: take the lock (taking over a stale one), check that the
    target has a release and that it is healthy, make it live, verify through the live
    server (restoring on failure), record, free the lock. Prints the target's record last."""
    # The target's health probe starts as soon as the lock is ours, in the background (its
    # lines into the lock's folder, which unlocking removes), while the lock's record is
    # written and the checks that may end the switch first run; it is judged after them.
    answers = f"{LOCK}/health"
    probing = f"curl {probe_rule.fetch(probes, timeout)} > {answers} 2>/dev/null 9>&- & probing=$!"
    healthy = f"wait $probing; {probe_rule.judge(probes)} < {answers}" if probes else "true"
    unlock = f"{{ {free_lock(token)}; }}"
    stop = f"kill $probing 2>/dev/null; {unlock}"  # a switch that ends before the probe is judged
    restore = _set_live('"$old"')
    if verify:  # the reload, then the probes through the live route, in one curl
        verified = [
            f"said=$(curl {NOTIFIED} --next {probe_rule.fetch(verify, timeout)})",
            f'case "$said" in "notified 2"*) ;; *) {restore}; {unlock}; exit {NOTIFY_FAILED};; esac',
            f"if ! printf '%s\\n' \"$said\" | {probe_rule.judge(verify, skip=1)}; then",
        ]
    else:
        verified = [f"{NOTIFY} || {{ {restore}; {unlock}; exit {NOTIFY_FAILED}; }}", "if false; then"]
    return "\n".join(
        [
            take_lock(holder, lease_seconds, deployment, taken=probing if probes else ""),
            read_word("old", f"{STATE}/live"),
            f"if [ ! -s {STATE}/{target} ]; then {stop}; exit {NO_RELEASE}; fi",
            # An unfinished release of the target (its process was killed): its route state
            # names a release that never passed its checks. `deployer lock release` or the
            # next release puts the previous one back first.
            f"if [ -f {STATE}/pending ] && grep -qx 'colour {target}' {STATE}/pending 2>/dev/null; then {stop}; cat {STATE}/pending; exit {PENDING}; fi",
            f'if [ "$old" = {target} ]; then {stop}; echo already; cat {STATE}/{target}; exit 0; fi',
            f"if ! {{ {healthy}; }}; then {unlock}; exit {TARGET_UNHEALTHY}; fi",
            _set_live(target),
            *verified,
            f"  {restore}; {NOTIFY}; {unlock}; echo restored; exit {VERIFY_FAILED}",
            "fi",
            f"printf '%s\\n' {with_previous(history_line)} >> {HISTORY} && sync {HISTORY}",
            unlock,
            'echo "switched from ${old:-none}"',
            f"cat {STATE}/{target}",
        ]
    )


def with_previous(line: str) -> str:
    """The history line as one shell word, PREVIOUS (its first) replaced by $old."""
    head, mark, tail = line.partition(PREVIOUS)
    return shlex.quote(head) + ('"$old"' + shlex.quote(tail) if mark else "")
