"""The deployer's own images on a swarm: each push overlaps the next build, a copy the registry
has is not pushed again, and a failed push is raised once every push has ended."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from deployer.errors import EngineError
from deployer.runtime import swarm_images

REGISTRY = "registry.example:5000"


class FakeCluster:
    def __init__(self, has: set[str], fail: set[str] = frozenset()) -> None:
        self.has, self.fail = set(has), fail
        self.pushed: list[str] = []
        self.release = threading.Event()  # a push ends only when the test lets it
        self.started = threading.Event()

    def digest(self, target: str, auth) -> str | None:
        return f"sha256:{len(target):064d}" if target in self.has else None

    def push(self, local: str, target: str, *, auth, step: str) -> None:
        self.started.set()
        assert self.release.wait(5), "the test never let the push end"
        if local.split(":")[0] in self.fail:
            raise EngineError(f"pushing {target} failed: denied", step=step, command="push")
        self.pushed.append(local)
        self.has.add(target)


@pytest.fixture
def own(monkeypatch):
    said: list[str] = []
    built: list[str] = []
    tokens: list[str] = []
    ctx = SimpleNamespace(
        config=SimpleNamespace(registry=SimpleNamespace(url=REGISTRY), base_image="debian:trixie-slim"),
        engine=object(),
        say=said.append,
    )

    def make(cluster: FakeCluster, *, refresh: bool = False) -> swarm_images.OwnImages:
        def own_image(engine, name, *, base_image, say, fresh):
            if name == "db":  # the second build starts only once the first push is under way
                assert cluster.started.wait(5), "the edge's push did not start before the next build"
            built.append(name)
            tokens.append(fresh)
            return f"{name}:tag"

        monkeypatch.setattr(swarm_images, "Swarm", lambda engine: cluster)
        monkeypatch.setattr(swarm_images, "registry_auth", lambda ctx: None)
        monkeypatch.setattr(swarm_images.images, "own_image", own_image)
        images = swarm_images.OwnImages(ctx, refresh=refresh)  # type: ignore[arg-type]
        images.said, images.built, images.tokens = said, built, tokens  # type: ignore[attr-defined]
        return images

    return make


def test_each_push_runs_while_the_next_image_builds_and_refs_wait_for_all(own):
    cluster = FakeCluster(has=set())
    images = own(cluster)
    images.build("edge")
    images.build("db")  # FakeCluster's own_image waits for the edge's push to have started
    images.build("agent")
    assert cluster.pushed == [], "no push has ended yet"
    cluster.release.set()
    refs = images.refs()
    assert sorted(cluster.pushed) == ["agent:tag", "db:tag", "edge:tag"]
    assert set(refs) == {"edge", "db", "agent"}
    assert all(ref.startswith(f"{REGISTRY}/{name}:tag@sha256:") for name, ref in refs.items())
    assert images.said == [f"pushing {REGISTRY}/{n}:tag" for n in ("edge", "db", "agent")]


def test_a_copy_the_registry_has_is_kept_unless_refreshed(own):
    cluster = FakeCluster(has={f"{REGISTRY}/edge:tag"})
    cluster.started.set()
    cluster.release.set()
    images = own(cluster)
    images.build("edge")
    images.build("db")
    assert images.refs()["edge"].startswith(f"{REGISTRY}/edge:tag@")
    assert cluster.pushed == ["db:tag"]
    again = own(cluster, refresh=True)
    again.build("edge")
    again.build("db")
    again.refs()
    assert cluster.pushed == ["db:tag", "edge:tag", "db:tag"], "refresh pushes over the registry's tag"
    fresh = again.tokens[-2:]
    assert fresh[0] == fresh[1] and len(fresh[0]) == 16, "one refresh, one DEPLOYER_FRESH: the images share layers"
    assert images.tokens[:2] == ["", ""], "without a refresh the cache is used"


def test_a_failed_push_is_raised_after_every_push_ended_the_first_built_first(own):
    cluster = FakeCluster(has=set(), fail={"db", "agent"})
    images = own(cluster)
    for name in ("edge", "db", "agent"):
        images.build(name)
    cluster.release.set()
    with pytest.raises(EngineError, match=r"pushing registry.example:5000/db:tag failed: denied"):
        images.refs()
    assert cluster.pushed == ["edge:tag"], "the edge's push ended, and was waited for"
    assert not any(t.is_alive() for t in images.threads.values())


def test_an_unexpected_error_in_a_push_is_an_engine_error_naming_the_push(own):
    cluster = FakeCluster(has=set())
    cluster.started.set()
    cluster.release.set()

    def boom(*args, **kwargs):
        raise ConnectionResetError("reset by peer")

    cluster.push = boom  # type: ignore[method-assign]
    images = own(cluster)
    images.build("edge")
    with pytest.raises(EngineError, match=r"pushing registry.example:5000/edge:tag failed: reset by peer") as err:
        images.refs()
    assert err.value.step == "up"
