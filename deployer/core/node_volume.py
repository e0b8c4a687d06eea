"""The one-shot scripts for a local volume of another node than a swarm's manager (the
database's, when [swarm] db_constraints puts it on a worker): the manager's Engine API
reaches no other node's volumes, so a task on that node (adapters/node_task.py) runs one of
these through that node's engine socket. Pure: they only build shell text.

    check   before `down --volumes` removes anything: is the volume there, and is it this
            deployment's (labelled with its project and deployment id, core/volumes.py)
    remove  at the end of it: the DELETE, retried while a container going away still uses it
"""

from __future__ import annotations

import json
import shlex

from deployer.core import volumes as ownership

OURS, ABSENT, NOT_OURS = 0, 44, 45  # the exit codes of the check; the removal's 0 is "removed"
SOCKET = "/var/run/docker.sock"


def check_script(volume: str, owner: tuple[str, str]) -> str:
    """Exit ABSENT when the node has no such volume, NOT_OURS unless its labels name `owner`
    (project, deployment id), else OURS; it changes nothing."""
    return _check(volume, owner) + f"exit {OURS}"


def removal_script(volume: str, attempts: int = 60, owner: tuple[str, str] | None = None) -> str:
    """Remove the volume, retried each second while a container that is going away still uses
    it: exit 0 when removed, ABSENT when there is no such volume. With `owner`: the check
    first, so a volume not labelled with it stays (exit NOT_OURS)."""
    url = shlex.quote(f"http://engine/volumes/{volume}")
    return (
        (_check(volume, owner) if owner else "") + f"i=0; while [ $i -lt {attempts} ]; do "
        f"code=$(curl -s -o /dev/null -w '%{{http_code}}' --unix-socket {SOCKET} -X DELETE {url}); "
        f'case "$code" in 204) exit 0;; 404) exit {ABSENT};; esac; '
        "i=$((i+1)); sleep 1; done; "
        f'echo "volume {volume}: HTTP $code" >&2; exit 1'
    )


def _check(volume: str, owner: tuple[str, str]) -> str:
    url = shlex.quote(f"http://engine/volumes/{volume}")
    labels = sorted(ownership.volume_labels(*owner).items())  # the engine's JSON has no spaces
    has = "".join(
        f' && printf %s "$v" | grep -qF {shlex.quote(json.dumps(k) + ":" + json.dumps(v))}' for k, v in labels
    )
    return (
        f'v=$(curl -s --unix-socket {SOCKET} {url}); case "$v" in *\'"Name":\'*) ;; *) exit {ABSENT};; '
        f"esac; true{has} || {{ echo 'volume {volume}: not labelled for this deployment' >&2; exit {NOT_OURS}; }}; "
    )
