"""The registry's HTTP API (v2), read from the CLI machine: the manifest of a digest, so that a
promotion knows which image ID a digest names before any engine pulls it.

The login goes only to the configured registry's host and to the token service that registry
names in its challenge, both over https, never over plain http. A registry that needs no login
(`registry.anonymous`) is read over plain http when https does not answer (an insecure
registry on a private network): what it serves is checked against the digest anyway.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit
from urllib.request import parse_http_list, parse_keqv_list

from deployer.core import references
from deployer.errors import EngineError, InputError

LIMIT = 4 << 20  # bytes of a manifest (registries refuse bigger ones)
STEP = "images"
API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}  # as docker does


def _basic(login: dict[str, str]) -> dict[str, str]:
    user, password = login.get("username"), login.get("password")
    if not (user and password):
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _token_request(registry: str, login: dict[str, str], challenge: dict[str, str]) -> Any:
    """The request for a Bearer token at the realm the registry named (https with a login)."""
    import httpx

    realm = urlsplit(challenge.get("realm", ""))
    if realm.scheme not in ("https", "http") or (login and realm.scheme != "https"):
        raise EngineError(f"{registry} names a token service that is not https: {realm.geturl()!r}", step=STEP)
    params = {k: challenge[k] for k in ("service", "scope") if challenge.get(k)}
    if login.get("identitytoken"):
        form = {**params, "grant_type": "refresh_token", "client_id": "deployer"}
        return httpx.Request("POST", realm.geturl(), data={**form, "refresh_token": login["identitytoken"]})
    return httpx.Request("GET", realm.geturl(), params=params, headers=_basic(login))


def _login(registry: str, login: dict[str, str]) -> Any:
    """An httpx auth flow that answers a registry's 401: Basic with the login, or a Bearer
    token from the realm of its challenge."""
    import httpx

    class Login(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            response = yield request
            scheme, _, rest = response.headers.get("www-authenticate", "").partition(" ")
            if response.status_code != 401 or scheme.lower() not in ("basic", "bearer"):
                return
            if scheme.lower() == "basic":
                if not _basic(login):
                    return
                request.headers.update(_basic(login))
            else:
                answer = yield _token_request(registry, login, parse_keqv_list(parse_http_list(rest)))
                answer.read()
                try:
                    body = answer.json() if answer.status_code == 200 else {}
                except ValueError:
                    body = {}
                token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
                if not token:
                    raise InputError(f"the token service of {registry} gave no token ({answer.status_code}): check the registry login; nothing was changed")  # fmt: skip
                request.headers["Authorization"] = f"Bearer {token}"
            yield request

    return Login()


def _manifest(client: Any, url: str) -> bytes:
    with client.stream("GET", url, headers={"Accept": ", ".join(references.ACCEPT)}) as response:
        if response.status_code in (401, 403):
            raise InputError(f"the registry refused to show {url} ({response.status_code}): check the registry login; nothing was changed")  # fmt: skip
        if response.status_code == 404:
            raise InputError(f"the registry has no manifest {url}: nothing was changed")
        if response.status_code != 200:
            raise EngineError(f"reading {url} answered {response.status_code}", step=STEP)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > LIMIT:
                raise EngineError(f"the manifest at {url} is over {LIMIT >> 20} MiB", step=STEP)
        return bytes(body)


def _config(client: Any, base: str, digest: str, platform: tuple[str, str]) -> str:
    kind, ref = references.config_step(_manifest(client, f"{base}/manifests/{digest}"), digest, platform)
    if kind == "manifest":  # an index: the platform's own manifest
        kind, ref = references.config_step(_manifest(client, f"{base}/manifests/{ref}"), ref, platform)
    if kind != "config":
        raise ValueError("an index names another index")
    return ref


def image_config(
    repository: str, digest: str, login: dict[str, str] | None, platform: tuple[str, str], *, timeout: float
) -> str:
    """The image ID (config digest) that `repository@digest` names for the platform (os,
    architecture), read from the registry's API. InputError when the registry has no such
    manifest or it does not hash to the digest; EngineError when the registry cannot be read."""
    import httpx

    registry, path = references.split(repository)
    registry = API_HOSTS.get(registry, registry)
    schemes = ("https",) if login else ("https", "http")
    for scheme in schemes:
        try:
            with httpx.Client(auth=_login(registry, login or {}), timeout=timeout, follow_redirects=False) as client:
                return _config(client, f"{scheme}://{registry}/v2/{path}", digest, platform)
        except ValueError as exc:
            raise InputError(f"{repository}@{digest}: {exc}; nothing was changed") from None
        except httpx.HTTPError as exc:
            if scheme == schemes[-1]:
                https_only = " (a registry that needs a login is read over https only)" if login else ""
                raise EngineError(
                    f"cannot read {repository}@{digest[:19]} from the registry{https_only}: {type(exc).__name__}: {exc}",
                    step=STEP,
                ) from None
    raise AssertionError(schemes)  # every scheme returned or raised
