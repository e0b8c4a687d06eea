"""What an engine error says: the Engine API call it answered, and the engine (pure parts)."""

from __future__ import annotations

import requests
from docker.errors import APIError

from deployer.adapters.failures import api_call, reason
from deployer.cli.common import headline
from deployer.errors import ENGINE_HOST, EngineError, InputError


def refused(method: str, url: str, said: str) -> APIError:
    response = requests.Response()
    response.status_code = 409
    response.request = requests.Request(method, url).prepare()
    return APIError("409 Client Error", response=response, explanation=said)


def test_the_call_is_named_without_the_api_version_or_the_query():
    exc = refused("POST", "http+docker://localhost/v1.41/containers/create?name=shop-db", "Conflict")
    assert api_call(exc) == "POST /containers/create"
    assert reason(exc) == "Conflict (POST /containers/create)"
    assert api_call(ValueError("no request")) == "" and reason(ValueError("plain")) == "plain"


def test_the_engines_words_are_masked_and_the_call_is_said_once():
    from deployer.core import masking

    masking.register("s3cret-value")
    try:
        said = reason(refused("DELETE", "http+docker://localhost/v1.41/volumes/x", "s3cret-value (DELETE /volumes/x)"))
    finally:
        masking.forget()
    assert "s3cret-value" not in said and said.count("DELETE /volumes/x") == 1, said


def test_an_engine_error_names_the_engine_its_command_used_unless_it_says_so_already():
    token = ENGINE_HOST.set("ssh://deploy@web1")
    try:
        failed = EngineError("cannot start shop-db: no such image", step="up")
        named = EngineError("cannot reach ssh://deploy@web1: refused", step="engine")
    finally:
        ENGINE_HOST.reset(token)
    assert failed.host == "ssh://deploy@web1"
    assert (
        headline(failed)
        == "ERROR (EngineError in step 'up', on ssh://deploy@web1): cannot start shop-db: no such image"
    )
    assert headline(named) == "ERROR (EngineError in step 'engine'): cannot reach ssh://deploy@web1: refused"
    assert EngineError("x").host == "", "no engine call made yet: no host"
    assert headline(InputError("bad")) == "ERROR (InputError): bad"


def test_an_unreachable_engine_says_what_to_check_not_the_transports_repr():
    from deployer.adapters.engine import Engine
    from deployer.errors import UnreachableError

    for host, why in [
        ("unix:///nonexistent/docker.sock", "no Docker socket there"),
        ("tcp://127.0.0.1:9", "connection refused"),
    ]:
        engine = Engine(host)
        try:
            engine.sdk  # noqa: B018 - the connection is made on first use
        except UnreachableError as exc:
            text = str(exc)
        else:
            raise AssertionError(f"{host} answered")
        finally:
            engine.close()
        assert f"cannot reach the Docker engine at {host}: {why}; check that Docker runs there" in text
        assert "DOCKER_HOST or engine.host" in text and "(" not in text.split(": ", 1)[1]


def test_a_network_the_engine_lost_count_of_says_so_and_how_to_free_it():
    """dockerd 20.10 can keep counting an endpoint on a network after its container is gone:
    the network then lists no container, and every removal is refused until dockerd restarts."""
    from types import SimpleNamespace

    from deployer.adapters.engine import Engine

    def refuse(name):
        raise refused(
            "DELETE", f"http+docker://localhost/v1.41/networks/{name}", f"network {name} has active endpoints"
        )

    def engine(containers: dict) -> Engine:
        made = Engine("unix:///nonexistent/docker.sock")
        api = SimpleNamespace(remove_network=refuse, inspect_network=lambda name: {"Containers": containers})
        made._client = SimpleNamespace(api=api)
        return made

    lost = engine({}).remove_network("shop-edge", wait=0.3)
    assert lost.startswith("network shop-edge has active endpoints") and "restarting dockerd frees it" in lost, lost
    used = engine({"abc": {"Name": "other-app-1"}}).remove_network("shop-edge", wait=0.3)
    assert used == "still used by other-app-1"
