"""The registry's manifest, read before a promotion pulls: the login goes only to the
configured registry and the token service it names, over https, never over plain http.
(The registry here is an httpx mock transport; tests/integration/test_cd.py reads a real one.)"""

from __future__ import annotations

import functools
import hashlib
import json

import httpx
import pytest

from deployer.adapters import registry
from deployer.errors import EngineError, InputError

REPO = "registry.example.com/shop/shop-backend"
IMAGE_ID = "sha256:" + "1" * 64
MANIFEST = json.dumps({"schemaVersion": 2, "config": {"digest": IMAGE_ID}, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
LOGIN = {"username": "ci", "password": "registry-pw", "serveraddress": "registry.example.com"}
BASIC = httpx.BasicAuth("ci", "registry-pw")._auth_header
PLATFORM = ("linux", "amd64")


@pytest.fixture
def seen(monkeypatch):
    """Every request the client sends (its URL and Authorization header as sent), answered by
    `answer` (set by the test)."""
    sent: list[tuple[httpx.URL, str | None]] = []
    state = {"answer": lambda request: httpx.Response(404)}

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url, request.headers.get("authorization")))
        return state["answer"](request)

    monkeypatch.setattr(httpx, "Client", functools.partial(httpx.Client, transport=httpx.MockTransport(handler)))
    return sent, state


def token_registry(realm: str):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            ok = request.headers.get("authorization") == BASIC and request.url.params["scope"] == "repository:shop/shop-backend:pull"  # fmt: skip
            return httpx.Response(200, json={"token": "t0k"}) if ok else httpx.Response(401)
        if request.headers.get("authorization") == "Bearer t0k":
            return httpx.Response(200, content=MANIFEST)
        challenge = f'Bearer realm="{realm}",service="registry.example.com",scope="repository:shop/shop-backend:pull"'
        return httpx.Response(401, headers={"www-authenticate": challenge})

    return answer


def test_a_bearer_registry_gets_the_login_only_at_its_https_token_service(seen):
    sent, state = seen
    state["answer"] = token_registry("https://auth.example.com/token")
    assert registry.image_config(REPO, DIGEST, LOGIN, PLATFORM, timeout=5) == IMAGE_ID
    assert [(url.scheme, url.host) for url, _ in sent] == [
        ("https", "registry.example.com"),
        ("https", "auth.example.com"),
        ("https", "registry.example.com"),
    ]
    assert [authorization for _, authorization in sent] == [None, BASIC, "Bearer t0k"]
    assert sent[0][0].path == f"/v2/shop/shop-backend/manifests/{DIGEST}"


def test_a_token_service_over_plain_http_never_gets_the_login(seen):
    sent, state = seen
    state["answer"] = token_registry("http://auth.example.com/token")
    with pytest.raises(EngineError, match="not https"):
        registry.image_config(REPO, DIGEST, LOGIN, PLATFORM, timeout=5)
    assert [url.host for url, _ in sent] == ["registry.example.com"]


def test_a_login_never_goes_over_plain_http(seen):
    sent, state = seen

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("wrong version number", request=request)

    state["answer"] = refuse
    with pytest.raises(EngineError, match="read over https only"):
        registry.image_config(REPO, DIGEST, LOGIN, PLATFORM, timeout=5)
    assert [url.scheme for url, _ in sent] == ["https"]
    # A registry that needs no login: plain http after https, and what it serves is checked.
    sent.clear()
    state["answer"] = lambda r: refuse(r) if r.url.scheme == "https" else httpx.Response(200, content=MANIFEST)
    assert registry.image_config(REPO, DIGEST, None, PLATFORM, timeout=5) == IMAGE_ID
    assert [url.scheme for url, _ in sent] == ["https", "http"]
    assert all(authorization is None for _, authorization in sent)


def test_a_manifest_that_is_missing_or_not_the_digests_is_bad_input(seen):
    sent, state = seen
    with pytest.raises(InputError, match="the registry has no manifest"):
        registry.image_config(REPO, DIGEST, None, PLATFORM, timeout=5)
    state["answer"] = lambda r: httpx.Response(200, content=MANIFEST.replace(b"1", b"2"))
    with pytest.raises(InputError, match="does not hash to"):
        registry.image_config(REPO, DIGEST, None, PLATFORM, timeout=5)
    state["answer"] = lambda r: httpx.Response(401, headers={"www-authenticate": 'Basic realm="x"'})
    with pytest.raises(InputError, match="refused to show"):
        registry.image_config(REPO, DIGEST, LOGIN, PLATFORM, timeout=5)
    assert sent[-1] == (sent[-1][0], BASIC) and sent[-1][0].scheme == "https"  # Basic to the registry itself
