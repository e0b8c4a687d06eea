"""Notifications: [notify] webhook (Slack-compatible JSON) and/or hook command, on

    release_started, release_succeeded, release_failed (with the step), switch,
    auto_rollback, watch_passed, watch_no_verdict, maintenance_on, maintenance_off,
    backup_failed (sent by the backup agent, to the same webhook)

The webhook gets `{"text": "<one line for people>", "event": ..., "project": ..., ...}`:
Slack, Mattermost and friends show `text`, and a program reads the fields. The hook
command runs on the CLI's machine with the same JSON on its stdin and DEPLOYER_EVENT and
DEPLOYER_TEXT in its environment.

A notification never fails what it reports: a webhook that is down, slow (notify.timeout)
or answers an error, and a hook that fails, are reported as a warning line, and the
command goes on. The webhook's URL is a secret: it is in no message, argv or history.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from deployer.core.masking import mask
from deployer.flows.context import Context, now_text, who

EVENTS = (
    "release_started",
    "release_succeeded",
    "release_failed",
    "switch",
    "auto_rollback",
    "watch_passed",
    "watch_no_verdict",
    "maintenance_on",
    "maintenance_off",
    "backup_failed",
)


def payload(ctx: Context, event: str, text: str, fields: dict[str, Any]) -> dict[str, Any]:
    config = ctx.config
    where = f"{config.name}" + (f" ({config.environment})" if getattr(config, "environment", "") else "")
    body = {
        "text": mask(f"[{where}] {text}"),
        "event": event,
        "project": config.name,
        "environment": getattr(config, "environment", "") or None,
        "time": now_text(),
        "by": who(),
    }
    body.update({k: v for k, v in fields.items() if v is not None})
    return json.loads(mask(json.dumps(body)))


def send(ctx: Context, event: str, text: str, **fields: Any) -> list[str]:
    """Tell the webhook and the hook command; returns what failed (also said as warnings)."""
    settings = ctx.config.notify
    if not settings.webhook and not settings.command:
        return []
    problems: list[str] = []
    try:
        body = json.dumps(payload(ctx, event, text, fields)).encode()
        if settings.webhook:
            problem = _post(settings.webhook, body, settings.timeout)
            if problem:
                problems.append(f"webhook: {problem}")
        if settings.command:
            problem = _hook(list(settings.command), body, event, text, settings.timeout, ctx.config.root)
            if problem:
                problems.append(f"hook command: {problem}")
    except Exception as exc:  # a notification must never fail what it reports
        problems.append(f"{type(exc).__name__}: {exc}")
    problems = [mask(p) for p in problems]
    if problems:
        ctx.say(f"warning: the {event} notification failed ({'; '.join(problems)}); carrying on")
    return problems


def _post(url: str, body: bytes, timeout: float) -> str:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "deployer"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(4096)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:  # never the URL itself: it is a secret
        return f"not reached ({type(exc.reason).__name__})"
    except Exception as exc:  # timeouts, connection resets
        return f"not reached ({type(exc).__name__})"
    return ""


def _hook(argv: list[str], body: bytes, event: str, text: str, timeout: float, cwd) -> str:
    env = {**os.environ, "DEPLOYER_EVENT": event, "DEPLOYER_TEXT": mask(text)}
    try:
        done = subprocess.run(argv, input=body, capture_output=True, timeout=timeout, env=env, cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:g}s"
    except OSError as exc:
        return f"cannot run {argv[0]}: {exc.strerror}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"exited {done.returncode}" + (f": {mask(tail[0])[:200]}" if tail[0] else "")
    return ""
