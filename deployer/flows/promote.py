"""`deployer promote VERSION --from staging --to production`: release on one environment
exactly the images that another released healthy. Production never builds.

    1. read the source environment's history (on its host): its newest release of VERSION
       must have succeeded, with no automatic rollback of it since, and must have recorded
       the image ID of every service;
    2. optionally, those IDs must be the ones CI built (--expect-images); every digest it
       recorded must be in the configured registry's repository of its service
       (core/references.py): that history was written on the source's host, and the pull
       carries the registry's login;
    3. find every image: already on the target (by ID), in the registry by the digest the
       source recorded (on a swarm, the one its nodes pulled), on the CLI machine's engine,
       or on the source's engine (streamed through the CLI);
    4. release VERSION on the target with those IDs pinned: its IMAGES step moves them and
       refuses any other image under the same tag; on a swarm, the stacks pin the source's
       digest, never what the tag names now (core/digests.py).

Steps 1-3 only read, so every refusal (exit 2) leaves both hosts as they were; before any
pull, the registry's manifest of each digest must name the pinned image ID (artifacts.check).
"""

from __future__ import annotations

import json
import re
from typing import Any

from deployer.core import digests, history, references
from deployer.core.versions import check_version
from deployer.errors import InputError
from deployer.flows import artifacts
from deployer.flows.context import Context
from deployer.flows.release import Released, release

HISTORY = 1000  # lines of the source's history searched for the release
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


def healthy_release(source: Context, version: str) -> dict[str, Any]:
    """The source environment's newest release entry of VERSION, if it was healthy."""
    name = source.config.environment or "the source"
    source.edge.require()
    entries = source.edge.history(HISTORY)
    releases = [e for e in entries if e.get("action") == "release" and e.get("version") == version]
    if not releases:
        raise InputError(f"{name} never released {version}: release it there first; nothing was changed")
    entry = releases[-1]
    if entry.get("outcome", history.OK) != history.OK:
        step = f" in step '{entry['step']}'" if entry.get("step") else ""
        raise InputError(
            f"{version} {entry.get('outcome')} on {name}{step} ({entry.get('time', '?')}): only a release that "
            "was healthy there is promoted; nothing was changed"
        )
    after = entries[entries.index(entry) + 1 :]
    if any(e.get("action") == "auto-rollback" and e.get("version") == version for e in after):
        raise InputError(f"{version} was rolled back automatically on {name} after its release; nothing was changed")
    ids = entry.get("images") if isinstance(entry.get("images"), dict) else {}
    missing = [s for s in source.config.services if not IMAGE_ID.fullmatch(str(ids.get(s, "")))]
    if missing:
        raise InputError(
            f"{name}'s release of {version} recorded no image ID for {missing[0]} (released by an older "
            "deployer?): release it there again, then promote; nothing was changed"
        )
    return entry


def expected_images(text: str) -> dict[str, str]:
    """--expect-images: {"service": "sha256:..."} or `deployer push --json` output."""
    try:
        value = json.loads(text)
    except ValueError:
        raise InputError("--expect-images: not JSON (give the output of `deployer push --json`)") from None
    if not isinstance(value, dict):
        raise InputError("--expect-images: must be a JSON object of service -> image ID")
    out = {}
    for service, item in value.items():
        image_id = item.get("id") if isinstance(item, dict) else item
        if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
            raise InputError(f"--expect-images: {service}: not an image ID (sha256:<64 hex>)")
        out[str(service)] = image_id
    return out


def recorded_digests(target: Context, entry: dict[str, Any], origin: str | None) -> dict[str, str]:
    """service -> the digest the source recorded, each one <registry repository>@sha256:<64 hex>
    of the target's [registry] (exit 2 for any other); none without a registry (streamed)."""
    registry, services = target.config.registry, target.config.services
    if registry is None:
        return {}
    found = {s: d for s, d in digests.recorded(entry).items() if s in services}
    for service, ref in sorted(found.items()):
        repository = registry.repository(services[service].image)
        why = references.problem(ref, repository)
        if why:
            shown = ref if len(ref) <= 160 else ref[:160] + "..."
            raise InputError(
                f"{origin}'s history names {shown!r} as the image of {service}, and {why}: a promotion pulls only "
                f"{repository}@sha256:<64 hex> ([registry] url); nothing was pulled or changed"
            )
    return found


def promote(
    source: Context,
    target: Context,
    version: str,
    *,
    backup: bool = True,
    expect: dict[str, str] | None = None,
    **options: Any,
) -> Released:
    check_version(version)
    origin, name = source.config.environment, target.config.environment
    if origin == name:
        raise InputError(f"--from and --to are both {origin!r}: promote moves a release to another environment")
    if (source.engine.host or "") == (target.engine.host or ""):
        raise InputError(
            f"{origin} and {name} use the same engine ({target.engine.where}): each environment needs its own "
            "host (set engine.host in each [environments.<name>]); nothing was changed"
        )
    if set(source.config.services) != set(target.config.services):
        raise InputError(f"{origin} and {name} list different services: they must share one config")
    entry = healthy_release(source, version)
    ids = {s: entry["images"][s] for s in target.config.services}
    if expect is not None:
        wrong = sorted(s for s in set(ids) | set(expect) if ids.get(s) != expect.get(s))
        if wrong:
            s = wrong[0]
            raise InputError(
                f"{origin} released {version} with {s} image {str(ids.get(s))[:19]}, not the "
                f"{str(expect.get(s))[:19]} expected (--expect-images): nothing was changed"
            )
    pinned = artifacts.Pinned(ids, recorded_digests(target, entry, origin), origin, source.engine)
    target.say(
        f"promoting {version} from {origin} (released {entry.get('time', '?')}): "
        + ", ".join(f"{s} {i[7:19]}" for s, i in sorted(ids.items()))
    )
    return release(target, version, build=False, backup=backup, pinned=pinned, **options)
