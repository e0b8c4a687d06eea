"""The digest a swarm release pins: the image the history records, never what the tag names now."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_stack import swarm_config

from deployer.core import digests
from deployer.errors import EngineError
from deployer.flows import artifacts
from deployer.runtime import swarm_release
from deployer.runtime.mode import context

REPO = "registry.example:5000/shop/shop-backend"
OLD, NEW, GONE = ("sha256:" + c * 64 for c in "abc")
ID, OTHER_ID = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def test_candidates_put_a_promotions_digest_first_and_keep_only_the_registry_repository():
    repo_digests = [f"{REPO}@{OLD}", f"docker.io/library/shop-backend@{NEW}", f"{REPO}@{GONE}", "shop-backend:v2"]
    assert digests.candidates(REPO, repo_digests) == [f"{REPO}@{OLD}", f"{REPO}@{GONE}"]
    assert digests.candidates(REPO, repo_digests, first=f"{REPO}@{GONE}") == [f"{REPO}@{GONE}", f"{REPO}@{OLD}"]
    assert digests.candidates(REPO, [], first="") == []


def test_the_first_candidate_the_registry_still_has_is_chosen_else_none():
    asked = []

    def registry_has(*refs: str):
        def exists(ref: str) -> bool:
            asked.append(ref)
            return ref in refs

        return exists

    # The tag was pushed again (it names NEW now): the image's own digest is pinned, NEW never asked.
    assert digests.choose(REPO, [f"{REPO}@{OLD}"], registry_has(f"{REPO}@{OLD}", f"{REPO}@{NEW}")) == f"{REPO}@{OLD}"
    assert asked == [f"{REPO}@{OLD}"]
    # A promotion's recorded digest first; gone from the registry: the next one of the same image.
    assert digests.choose(REPO, [f"{REPO}@{OLD}"], registry_has(f"{REPO}@{OLD}"), first=f"{REPO}@{GONE}") == (
        f"{REPO}@{OLD}"
    )
    # None left (or never pushed): "" — the manager pushes the image.
    assert digests.choose(REPO, [f"{REPO}@{GONE}"], registry_has()) == ""
    assert digests.choose(REPO, [], registry_has(f"{REPO}@{NEW}")) == ""


def test_a_pinned_image_names_its_version_and_comes_back_as_its_digest():
    assert digests.pinned(f"{REPO}@{OLD}", "v2") == f"{REPO}:v2@{OLD}"
    assert digests.unpinned(f"{REPO}:v2@{OLD}") == f"{REPO}@{OLD}"
    assert digests.unpinned(f"{REPO}@{OLD}") == f"{REPO}@{OLD}"  # the registry's port is not a tag
    assert digests.unpinned(f"{REPO}:v2") == ""


def test_a_promotion_takes_the_digest_the_source_nodes_pulled_else_the_recorded_one():
    swarm = {"digests": {"backend": f"{REPO}@{GONE}"}, "swarm_images": {"backend": f"{REPO}:v2@{OLD}"}}
    assert digests.recorded(swarm) == {"backend": f"{REPO}@{OLD}"}
    compose = {"digests": {"backend": f"{REPO}@{OLD}", "frontend": None}}
    assert digests.recorded(compose) == {"backend": f"{REPO}@{OLD}"}
    assert digests.recorded({"swarm_images": {"backend": f"{REPO}:v2"}}) == {}
    assert digests.recorded({}) == {}


# -- the images step on a swarm, with the manager and the registry faked ----------------------


@pytest.fixture
def manager(make_config, monkeypatch):
    """A swarm config's context whose manager holds image ID (pulled as OLD) for both services,
    and a registry whose tags were pushed again since (they name NEW)."""
    ctx = context(swarm_config(make_config))
    ctx.__dict__["engine"] = SimpleNamespace(where="ssh://manager-1")
    held = {"Id": ID, "RepoDigests": []}
    registry = set()
    pushed = []

    def image(engine, ref):
        repo = ctx.config.registry.repository(ref.rpartition(":")[0])
        return {**held, "RepoDigests": [d.replace("REPO", repo) for d in held["RepoDigests"]]}

    def push(engine, image_id, repository, version, auth, *, step):
        pushed.append((image_id, repository, version, step))
        registry.add(f"{repository}@{GONE}")
        return f"{repository}@{GONE}"

    def digest(self, ref, auth=None):
        return ref.partition("@")[2] if ref in registry else None

    monkeypatch.setattr(swarm_release.moving, "image", image)
    monkeypatch.setattr(swarm_release.moving, "push", push)
    monkeypatch.setattr(swarm_release.Swarm, "digest", digest)
    return SimpleNamespace(ctx=ctx, held=held, registry=registry, pushed=pushed)


def test_a_release_pins_the_managers_image_not_the_tag_pushed_again(manager):
    manager.held["RepoDigests"] = [f"REPO@{OLD}"]
    for service in ("backend", "frontend", "worker"):
        repo = manager.ctx.config.registry.repository(manager.ctx.config.services[service].image)
        manager.registry.update({f"{repo}@{OLD}", f"{repo}@{NEW}"})
    pinned = swarm_release.images(manager.ctx, "v2")
    assert pinned["backend"] == f"{REPO}:v2@{OLD}"
    assert all(ref.endswith(f":v2@{OLD}") for ref in pinned.values())
    assert manager.pushed == []


def test_an_image_the_registry_has_no_digest_of_is_pushed_and_the_push_pinned(manager):
    manager.held["RepoDigests"] = [f"REPO@{OLD}"]  # deleted from the registry since
    pinned = swarm_release.images(manager.ctx, "v2")
    assert pinned["backend"] == f"{REPO}:v2@{GONE}"
    assert (ID, REPO, "v2", "images") in manager.pushed


def test_a_promotion_pins_the_sources_digest_and_refuses_another_image(manager):
    repo_of = {s: manager.ctx.config.registry.repository(v.image) for s, v in manager.ctx.config.services.items()}
    manager.held["RepoDigests"] = [f"REPO@{NEW}", f"REPO@{OLD}"]  # the same image, pushed twice
    manager.registry.update(f"{r}@{d}" for r in repo_of.values() for d in (OLD, NEW))
    pinned = artifacts.Pinned({s: ID for s in repo_of}, {s: f"{r}@{OLD}" for s, r in repo_of.items()}, "staging")
    assert swarm_release.images(manager.ctx, "v2", pinned=pinned)["backend"] == f"{REPO}:v2@{OLD}"
    other = artifacts.Pinned({s: OTHER_ID for s in repo_of}, pinned.digests, "staging")
    with pytest.raises(EngineError) as caught:
        swarm_release.images(manager.ctx, "v2", pinned=other)
    assert caught.value.step == "images" and "not the sha256:22222222222" in str(caught.value)
    assert manager.pushed == []
