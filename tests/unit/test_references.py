"""A reference another host recorded is pulled only when it is exactly the configured registry
repository's, by a sha256 digest; its manifest must hash to that digest and name the image."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from conftest import TWO

from deployer.adapters import images as moving
from deployer.core import references
from deployer.errors import InputError
from deployer.flows import promote

REPO = "registry.example.com:5000/shop/shop-backend"
D = "sha256:" + "a" * 64


def test_the_configured_repository_by_a_sha256_digest_is_the_only_reference_accepted():
    assert references.problem(f"{REPO}@{D}", REPO) == ""
    assert references.problem(f"registry.example.com/shop-backend@{D}", "registry.example.com/shop-backend") == ""


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        (f"registry.example.com.evil.net:5000/shop/shop-backend@{D}", "registry registry.example.com.evil.net:5000"),
        (f"evil.net/registry.example.com:5000/shop/shop-backend@{D}", "not a repository name"),
        (f"evil.net:5000/shop/shop-backend@{D}", "registry evil.net:5000"),
        (f"registry.example.com:5000@evil.net/shop/shop-backend@{D}", "more than one '@'"),
        (f"user:password@registry.example.com:5000/shop/shop-backend@{D}", "more than one '@'"),
        (f"registry.example.com:5001/shop/shop-backend@{D}", "registry registry.example.com:5001"),
        (f"registry.example.com/shop/shop-backend@{D}", "registry registry.example.com,"),
        (f"registry.example.com:05000/shop/shop-backend@{D}", "not a repository name"),
        (f"registry.example.com:5000:5000/shop/shop-backend@{D}", "not a repository name"),
        (f"Registry.example.com:5000/shop/shop-backend@{D}", "not a repository name"),
        (f"registry.example.com:5000/shop/Shop-backend@{D}", "not a repository name"),
        (f"registry.example.com:5000/shop/../evil/shop-backend@{D}", "not a repository name"),
        (f"registry.example.com:5000/shop/shop-backend/..@{D}", "not a repository name"),
        (f"registry.example.com:5000/shop/shop-backend%2f..@{D}", "not a repository name"),
        (f"registry.example.com:5000//shop/shop-backend@{D}", "not a repository name"),
        (f"registry.example.com:5000/shop/shop-backend-evil@{D}", "repository shop/shop-backend-evil"),
        (f"registry.example.com:5000/shop/shop-backend/evil@{D}", "repository shop/shop-backend/evil"),
        (f"registry.example.com:5000/shop@{D}", "repository shop,"),
        (f"registry.example.com:5000/evil/shop-backend@{D}", "repository evil/shop-backend"),
        (f"regіstry.example.com:5000/shop/shop-backend@{D}", "not a repository name"),  # a Cyrillic і
        (f"https://registry.example.com:5000/shop/shop-backend@{D}", "not a repository name"),
        (f"docker.io/library/shop-backend@{D}", "registry docker.io"),
        (f"shop/shop-backend@{D}", "registry shop,"),
        (f" {REPO}@{D}", "not a repository name"),
        (f"{REPO}:v1@{D}", "not a repository name"),
        (REPO, "no digest"),
        (f"{REPO}:v1", "no digest"),
        (f"{REPO}@sha256:{'a' * 63}", "not sha256:<64 hex>"),
        (f"{REPO}@sha256:{'A' * 64}", "not sha256:<64 hex>"),
        (f"{REPO}@sha512:{'a' * 128}", "not sha256:<64 hex>"),
        (f"{REPO}@{D}\n", "not sha256:<64 hex>"),
        (f"{REPO}@{D} ", "not sha256:<64 hex>"),
        (f"{REPO}@{D}/../x", "not sha256:<64 hex>"),
        (None, "not a string"),
        (["x"], "not a string"),
    ],
)
def test_a_tricky_reference_is_refused_with_its_reason(ref, why):
    assert why in references.problem(ref, REPO)


def test_the_credentials_go_only_with_a_reference_in_the_repository():
    assert references.within(f"{REPO}@{D}", REPO) and references.within(f"{REPO}:v1.2_rc-1", REPO)
    for ref in (f"{REPO}-evil:v1", f"{REPO}:v1/../x", f"{REPO}:", f"{REPO}:v1@{D}", f"{REPO}@sha256:abc", "evil/x:v1"):
        assert not references.within(ref, REPO), ref
    # The adapter refuses before it asks the engine anything (the engine here has no API at all).
    with pytest.raises(InputError, match="not in the registry repository"):
        moving.pull(SimpleNamespace(), f"evil.net:5000/shop/shop-backend@{D}", {"password": "pw"}, repository=REPO, step="images")  # fmt: skip


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


IMAGE_ID = "sha256:" + "1" * 64
MANIFEST = json.dumps({"schemaVersion": 2, "config": {"digest": IMAGE_ID}, "layers": []}).encode()


def index(*platforms: tuple[str, str, str]) -> bytes:
    entries = [{"digest": d, "platform": {"os": o, "architecture": a}} for o, a, d in platforms]
    return json.dumps({"schemaVersion": 2, "manifests": entries}).encode()


def test_a_manifest_names_its_config_once_it_hashes_to_the_digest():
    assert references.config_step(MANIFEST, digest_of(MANIFEST), ("linux", "amd64")) == ("config", IMAGE_ID)
    with pytest.raises(ValueError, match="does not hash to"):
        references.config_step(MANIFEST, D, ("linux", "amd64"))
    arm, amd = "sha256:" + "2" * 64, "sha256:" + "3" * 64
    both = index(("unknown", "unknown", D), ("linux", "arm64", arm), ("linux", "amd64", amd))
    assert references.config_step(both, digest_of(both), ("linux", "amd64")) == ("manifest", amd)
    with pytest.raises(ValueError, match="no image for linux/s390x"):
        references.config_step(both, digest_of(both), ("linux", "s390x"))
    for body in (b'{"schemaVersion": 1, "fsLayers": []}', b"[]", b"not json"):
        with pytest.raises(ValueError, match="manifest"):
            references.config_step(body, digest_of(body), ("linux", "amd64"))


def test_a_promotion_refuses_a_recorded_digest_outside_the_registry_before_anything(make_config):
    target = SimpleNamespace(config=make_config(TWO + '[registry]\nurl = "registry.example.com:5000/shop"\n'))
    repo = "registry.example.com:5000/shop/shop-backend"
    honest = {"digests": {"backend": f"{repo}@{D}", "gone": f"evil.net/x@{D}"}}
    assert promote.recorded_digests(target, honest, "staging") == {"backend": f"{repo}@{D}"}
    forged = {"digests": {"backend": f"registry.example.com.evil.net:5000/shop/shop-backend@{D}"}}
    with pytest.raises(InputError, match="staging's history names .* as the image of backend, and it names the reg"):
        promote.recorded_digests(target, forged, "staging")
    pulled = {"swarm_images": {"worker": f"evil.net/shop/shop-worker:v1@{D}"}}
    with pytest.raises(InputError, match="image of worker, and it names the registry evil.net"):
        promote.recorded_digests(target, pulled, "staging")
    assert promote.recorded_digests(target, {"digests": ["not", "a", "map"]}, "staging") == {}
    without = SimpleNamespace(config=make_config(TWO))  # no registry: nothing is pulled, images are streamed
    assert promote.recorded_digests(without, forged, "staging") == {}


def test_a_pinned_pull_goes_ahead_only_when_the_manifest_names_the_pinned_image(make_config, monkeypatch):
    from deployer.flows import artifacts

    config = make_config(TWO + '[registry]\nurl = "registry.example.com:5000/shop"\nanonymous = true\n')
    ctx = SimpleNamespace(config=config, engine=SimpleNamespace())
    monkeypatch.setattr(artifacts.moving, "platform", lambda engine: ("linux", "amd64"))
    monkeypatch.setattr(artifacts.registry_api, "image_config", lambda repository, digest, *a, **k: IMAGE_ID)

    def pull(image_id: str) -> artifacts.Item:
        return artifacts.Item("backend", "shop-backend:v2", "pull", image_id, digest=f"{REPO}@{D}", origin="staging")

    artifacts._verify_digests(ctx, [pull(IMAGE_ID)], None)
    artifacts._verify_digests(ctx, [pull(D)], None)  # the containerd image store: the image ID is the digest
    with pytest.raises(InputError, match=f"names image {IMAGE_ID[:19]} in the registry, not the sha256:eeeeeeeeeeee"):
        artifacts._verify_digests(ctx, [pull("sha256:" + "e" * 64)], None)


def test_the_repository_of_a_reference_keeps_a_registry_port_and_drops_a_tag_or_digest():
    digest = "sha256:" + "a" * 64
    cases = {
        "debian:trixie-slim": "debian",
        "debian": "debian",
        "localhost:5000/team/api": "localhost:5000/team/api",
        "localhost:5000/team/api:v2": "localhost:5000/team/api",
        f"localhost:5000/team/api@{digest}": "localhost:5000/team/api",
        f"debian:trixie@{digest}": "debian",
    }
    for ref, repository in cases.items():
        assert references.name_of(ref) == repository, ref
