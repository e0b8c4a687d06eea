"""A webhook URL (`notify.webhook`, `backup.webhook`) holds a token, so it need not live in
deployer.toml, which CD checks out from git. The key takes one of:

    "https://..."         the URL itself (a warning when its path or query looks like a token)
    "env:NOTIFY_WEBHOOK"  an environment variable (CD passes a repository secret this way)
    "file:notify.url"     a file only its owner can read (chmod 600), relative to the config

The URL is masked in everything printed. A variable that is not set, or a file that cannot
be read, is bad input where the command checks files (a release, `up`, `config check`);
elsewhere the webhook is off, so `status` in CI needs no secret."""

from __future__ import annotations

import os
import re

from deployer.config.envfile import read_mode_checked, register_url
from deployer.config.reader import Reader

URL = re.compile(r"https?://[^\s]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
TOKEN_PART = re.compile(r"[A-Za-z0-9_-]{16,}")
TOKEN_QUERY = re.compile(r"[?&](?:token|key|secret|sig|signature|code|auth|access_token)=", re.IGNORECASE)


def read(r: Reader, key: str) -> str | None:
    raw = r.string(key, default="") or None
    if raw is None:
        return None
    url: str | None
    if raw.startswith("env:"):
        name = raw[4:]
        if not ENV_NAME.fullmatch(name):
            raise r.error(key, "env: names an environment variable, such as env:NOTIFY_WEBHOOK")
        url, where = os.environ.get(name) or None, f"the environment variable {name}"
        if url is None and r.check_paths:
            with r.files():
                raise r.error(key, f"{where} is not set (the webhook's URL)")
    elif raw.startswith("file:"):
        path, where = (r.file.parent / raw[5:]).resolve(), f"the file {raw[5:]}"
        url = None
        if r.check_paths or path.is_file():
            with r.files():
                url = read_mode_checked(path, where=r.file, key=key).strip() or None
                if url is None:
                    raise r.error(key, f"{path} is empty (it should hold the webhook's URL)")
    else:
        url, where = raw, ""
        if looks_like_a_token(raw):
            r.warnings.append(
                f"{key} holds what looks like a token, in a file that CD checks out from git: "
                f'use "env:NAME" or "file:PATH" instead (docs/ci-cd.md)'
            )
    if url is not None and not URL.fullmatch(url):
        raise r.error(key, "must be an http:// or https:// URL" + (f" (in {where})" if where else ""))
    register_url(url)
    return url


def looks_like_a_token(url: str) -> bool:
    rest = url.split("://", 1)[-1].partition("/")[2]
    return bool(
        TOKEN_QUERY.search("?" + rest.partition("?")[2])
        or any(TOKEN_PART.fullmatch(p) for p in re.split(r"[/?&=#]", rest))
    )
