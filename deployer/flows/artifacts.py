"""Release images that move to the host: build once, move, never rebuild on the way.

When images move:
  - `deployer release VERSION` (its IMAGES step): every service's image VERSION that the
    target engine lacks is brought there, from the first source that has it:
      1. the target already has the same image ID (under another tag): it is tagged;
      2. the CLI machine's engine (DOCKER_HOST, or the local socket) has it: with
         [registry] it is pushed there and pulled on the target by digest, without one
         it is streamed (`docker save | docker load`) over the command's ssh tunnel;
      3. with [registry]: the target pulls <registry>/<image>:VERSION (CI pushed it);
      4. with --build: it is built on the target (as before).
    A target that is the CLI machine's own engine has nothing to move to.
  - `deployer push VERSION [-e ENV]` does only that: with [registry] it pushes from the
    CLI machine's engine (and prints the digests, for CI), and brings them to the
    environment's engine when that is another one.
  - `deployer promote` pins the image IDs that staging released healthy: see promote.py.
  - On a swarm the target is the manager; the stacks then pin a registry digest of the image
    `ensure` left there (swarm_release.images, core/digests.py), never the tag's.

Everything a move needs is checked by `check` before anything changes (exit 2: an image
found nowhere, registry credentials missing, a digest whose manifest names another image
than the one pinned); `ensure` runs in the IMAGES step.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from deployer.adapters import images as moving
from deployer.adapters import registry as registry_api
from deployer.adapters.engine import Engine
from deployer.config import envfile
from deployer.core.steps import Step
from deployer.errors import EngineError, InputError
from deployer.flows import images
from deployer.flows.context import Context

HERE = "this machine's engine"


@dataclass(frozen=True)
class Pinned:
    """The exact images a promotion releases, and where they can be found."""

    ids: dict[str, str]  # service -> image ID
    digests: dict[str, str] = field(default_factory=dict)  # service -> <registry repo>@sha256:...
    origin: str = ""  # the environment they were released healthy in
    source: Engine | None = None  # its engine, to stream from when nothing nearer has them


@dataclass(frozen=True)
class Item:
    """How one service's image reaches the target engine."""

    service: str
    ref: str  # <image>:<version> on the target
    how: str  # there, tag, stream, push, pull, build, missing
    image_id: str = ""  # the ID it must end up with ("" when not known before)
    source: Engine | None = None  # for stream and push
    digest: str = ""  # for pull
    origin: str = ""  # the source, for messages


def cli_engine(ctx: Context) -> Engine | None:
    """The engine of the machine the CLI runs on, when it is not the target's own."""
    host = os.environ.get("DOCKER_HOST") or None
    if host == ctx.engine.host:
        return None
    return Engine(host, connect_timeout=ctx.config.timeouts.request_timeout + 8)


def auth(ctx: Context) -> dict | None:
    registry = ctx.config.registry
    assert registry is not None
    values = None
    if registry.env_file:
        values = envfile.read(registry.env_file, where=ctx.config.path, key="registry.env_file").values
    return moving.credentials(registry.host, env_values=values, anonymous=registry.anonymous)


def plan(ctx: Context, version: str, local: Engine | None, *, build: bool, pinned: Pinned | None) -> list[Item]:
    target, registry = ctx.engine, ctx.config.registry
    items = []
    for service in ctx.config.services.values():
        ref = service.image_ref(version)
        have = target.image_id(ref)
        want = pinned.ids[service.name] if pinned else ""
        if have and (not want or have == want):
            items.append(Item(service.name, ref, "there", have))
            continue
        if want and target.image_id(want):
            items.append(Item(service.name, ref, "tag", want))
            continue
        if pinned:
            items.append(_pinned_source(ctx, service.name, ref, local, pinned))
            continue
        found = local.image_id(ref) if local else None
        if found and target.image_id(found):
            items.append(Item(service.name, ref, "tag", found))
        elif found:
            items.append(Item(service.name, ref, "push" if registry else "stream", found, local, origin=HERE))
        elif registry:
            items.append(Item(service.name, ref, "pull", digest=f"{registry.repository(service.image)}:{version}"))
        elif build:
            items.append(Item(service.name, ref, "build"))
        elif local is not None:
            raise InputError(
                f"image {ref} does not exist on {target.where} nor on {HERE} ({local.where}): build it here "
                f"(`deployer build {version}`) and release again, or set [registry]; nothing was changed"
            )
        else:
            items.append(Item(service.name, ref, "missing"))
    return items


def _pinned_source(ctx: Context, service: str, ref: str, local: Engine | None, pinned: Pinned) -> Item:
    want = pinned.ids[service]
    if pinned.digests.get(service) and ctx.config.registry:
        return Item(service, ref, "pull", want, digest=pinned.digests[service], origin=pinned.origin)
    if local is not None and local.image_id(want):
        return Item(service, ref, "stream", want, local, origin=HERE)
    if pinned.source is not None and pinned.source.image_id(want):
        return Item(service, ref, "stream", want, pinned.source, origin=f"{pinned.origin} ({pinned.source.where})")
    raise InputError(
        f"the image {pinned.origin} released for {service} ({want[:19]}) is no longer on {pinned.origin}'s "
        f"engine nor on {HERE}, and no registry digest was recorded: nothing was changed"
    )


def check(ctx: Context, version: str, *, build: bool = False, pinned: Pinned | None = None) -> list[Item]:
    """Before anything changes: where every image comes from (exit 2 when one is nowhere,
    or the registry credentials are missing)."""
    local = cli_engine(ctx)
    try:
        items = plan(ctx, version, local, build=build, pinned=pinned)
        if any(i.how in ("push", "pull") for i in items):
            _verify_digests(ctx, [i for i in items if i.how == "pull" and i.image_id], auth(ctx))
        return items
    finally:
        if local is not None:
            local.close()


def _verify_digests(ctx: Context, items: list[Item], credentials: dict | None) -> None:
    """Before any pull of a pinned image: the manifest the registry serves for its digest
    names that image ID as its config, for the target's platform (else exit 2). An engine
    with the containerd image store names an image by the digest it was pulled by: that
    digest is the image ID then."""
    if not items:
        return
    platform = moving.platform(ctx.engine)
    timeout = ctx.config.timeouts.request_timeout + 8
    for item in items:
        repository, _, digest = item.digest.partition("@")
        found = registry_api.image_config(repository, digest, credentials, platform, timeout=timeout)
        if item.image_id not in (found, digest):
            raise InputError(
                f"{item.digest} names image {found[:19]} in the registry, not the {item.image_id[:19]} that "
                f"{item.origin or 'the release'} recorded for {item.service}: not pulled, nothing was changed"
            )


def ensure(ctx: Context, version: str, *, build: bool = False, pinned: Pinned | None = None) -> dict:
    """The IMAGES step: bring every missing image to the target; returns the history's
    fields: the image ID of every service, and their registry digests when there are any."""
    local = cli_engine(ctx)
    try:
        items = plan(ctx, version, local, build=build, pinned=pinned)
        _bring(ctx, version, items)
    finally:
        if local is not None:
            local.close()
    found = {i.service: moving.image(ctx.engine, i.ref) or {} for i in items}
    ids = {s: info.get("Id", "") for s, info in found.items()}
    if pinned:
        wrong = [s for s, i in ids.items() if i != pinned.ids[s]]
        if wrong:
            raise EngineError(
                f"{wrong[0]}'s image on {ctx.engine.where} is {ids[wrong[0]][:19]}, not the "
                f"{pinned.ids[wrong[0]][:19]} that {pinned.origin} released",
                step=Step.IMAGES,
            )
    fields: dict = {"images": ids}
    registry = ctx.config.registry
    if registry:
        services = ctx.config.services
        digests = {s: moving.repo_digest(info, registry.repository(services[s].image)) for s, info in found.items()}
        fields["digests"] = {s: d for s, d in digests.items() if d} or None
    if pinned and pinned.origin:
        fields["promoted_from"] = pinned.origin
    return fields


def _bring(ctx: Context, version: str, items: list[Item]) -> None:
    target, say, step = ctx.engine, ctx.say, "images"
    streams: dict[int, list[Item]] = defaultdict(list)
    credentials = auth(ctx) if any(i.how in ("push", "pull") for i in items) else None
    for item in items:
        if item.how == "tag":
            moving.tag(target, item.image_id, item.ref, step=step)
            say(f"images: {item.ref} is already on {target.where} (same image ID): tagged")
        elif item.how == "stream":
            streams[id(item.source)].append(item)
        elif item.how == "push":
            assert item.source is not None and ctx.config.registry
            repo = ctx.config.registry.repository(ctx.config.services[item.service].image)
            digest = moving.push(item.source, item.image_id, repo, version, credentials, step=step)
            say(f"images: pushed {item.ref} from {HERE} as {digest}")
            _pull(ctx, item, digest, credentials)
        elif item.how == "pull":
            _pull(ctx, item, item.digest, credentials)
        elif item.how == "build":
            say(f"building {item.ref}")
            images.build_service(ctx, ctx.config.services[item.service], version, step=step)
        elif item.how == "missing":
            where = f" on {target.host}" if target.remote else ""
            raise EngineError(
                f"image {item.ref} does not exist{where}: build it (`deployer build {version}`) or pass --build",
                step=step,
            )
    for group in streams.values():
        source = group[0].source
        assert source is not None
        by_ref = [i.ref if source.image_id(i.ref) == i.image_id else i.image_id for i in group]
        moved = moving.stream(source, target, sorted(set(by_ref)), step=step)
        for item in group:
            moving.tag(target, item.image_id, item.ref, step=step)
        say(
            f"images: {', '.join(i.ref for i in group)} streamed from {group[0].origin} to {target.where} "
            f"({moved.bytes / 1e6:.1f} MB in {moved.seconds:.1f}s)"
        )


def _pull(ctx: Context, item: Item, reference: str, credentials: dict | None) -> None:
    assert ctx.config.registry is not None
    repository = ctx.config.registry.repository(ctx.config.services[item.service].image)
    got = moving.pull(ctx.engine, reference, credentials, repository=repository, step=Step.IMAGES)
    if item.image_id and got != item.image_id:
        raise EngineError(
            f"{reference} pulled on {ctx.engine.where} is image {got[:19]}, not {item.image_id[:19]}", step=Step.IMAGES
        )
    moving.tag(ctx.engine, got, item.ref, step=Step.IMAGES)
    ctx.say(f"images: {ctx.engine.where} pulled {reference} as {item.ref}")


def push(ctx: Context, version: str) -> dict[str, dict[str, str]]:
    """`deployer push`: service -> {"id", "digest"} (digest only with [registry])."""
    registry = ctx.config.registry
    local = cli_engine(ctx)
    if registry is None and local is None:
        raise InputError(
            f"nothing to move: there is no [registry], and {ctx.engine.where} is {HERE} "
            "(name an environment on another host with -e)"
        )
    here = local or ctx.engine
    try:
        missing = [
            s.image_ref(version) for s in ctx.config.services.values() if not here.image_id(s.image_ref(version))
        ]
        if missing:
            raise InputError(
                f"image {missing[0]} does not exist on {HERE} ({here.where}): build it first "
                f"(`deployer build {version}`); nothing was changed"
            )
        out: dict[str, dict[str, str]] = {}
        if registry:
            credentials = auth(ctx)
            for s in ctx.config.services.values():
                image_id = here.image_id(s.image_ref(version)) or ""
                digest = moving.push(here, image_id, registry.repository(s.image), version, credentials, step=Step.PUSH)
                ctx.say(f"pushed {s.image_ref(version)} as {digest}")
                out[s.name] = {"id": image_id, "digest": digest}
        if local is not None:
            pinned = Pinned(
                {s: here.image_id(ctx.config.services[s].image_ref(version)) or "" for s in ctx.config.services},
                {s: v["digest"] for s, v in out.items()},
            )
            fields = ensure(ctx, version, pinned=pinned)
            out = {
                s: {"id": i, **({"digest": out[s]["digest"]} if s in out else {})} for s, i in fields["images"].items()
            }
        return out
    finally:
        if local is not None:
            local.close()
