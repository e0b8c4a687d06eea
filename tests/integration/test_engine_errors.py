"""An engine's refusal, as a user reads it: the error names the Engine API call that failed and
the engine it was made on (adapters/failures.py, errors.ENGINE_HOST), through the real engine."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.docker


def test_a_refused_engine_call_names_the_api_call_and_the_engine(docker_client):
    from deployer.adapters import volumes
    from deployer.adapters.engine import Engine
    from deployer.cli.common import headline
    from deployer.config.model import DEFAULT_BASE_IMAGE
    from deployer.errors import EngineError

    name = f"t{uuid.uuid4().hex[:8]}-held"
    volume = docker_client.volumes.create(name)
    holder = docker_client.containers.create(DEFAULT_BASE_IMAGE, ["true"], volumes={name: {"bind": "/v"}})
    engine = Engine()
    try:
        with pytest.raises(EngineError) as caught:
            volumes.remove(engine, name, step="down")
        message = str(caught.value)
        assert f"cannot remove volume {name}" in message and "in use" in message, message
        assert f"(DELETE /volumes/{name})" in message, message
        assert caught.value.host == "the local engine"
        line = headline(caught.value)
        assert line.startswith("ERROR (EngineError in step 'down', on the local engine): cannot remove volume"), line
    finally:
        engine.close()
        holder.remove(force=True)
        volume.remove(force=True)
