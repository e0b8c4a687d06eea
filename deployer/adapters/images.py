"""Moving release images between engines: `docker save` streamed into `docker load`, and
push to / pull from a registry. The engine adapter stays the one place that connects to
Docker; this module uses its clients for the image transfer calls.

Nothing here holds an image in memory: a save is passed on to the load chunk by chunk as
it arrives, so an image of any size moves over the ssh tunnels in constant memory.
Registry credentials travel only in the Engine API's X-Registry-Auth header (to the local
engine for a push, through the tunnel to the remote engine for a pull): never in argv,
never in a message (their values are registered for masking). They are looked up for the
configured registry's host only, and sent only with a reference in its repository.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from deployer.adapters import progress
from deployer.adapters.engine import Engine, debug
from deployer.adapters.failures import reason as _reason
from deployer.core import masking, references
from deployer.core.steps import Step
from deployer.errors import EngineError, InputError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Moved:
    """Images moved to another engine, and what it took."""

    refs: tuple[str, ...]
    bytes: int
    seconds: float


def image(engine: Engine, ref: str) -> dict[str, Any] | None:
    """The inspect data of an image (by reference or ID), or None."""
    from docker.errors import ImageNotFound, NotFound

    try:
        return engine.sdk.api.inspect_image(ref)
    except (ImageNotFound, NotFound):
        return None


def labelled(engine: Engine, labels: dict[str, str | None], *, untagged: bool = False) -> list[dict[str, Any]]:
    """The engine's images with all these labels (None: with the label, whatever its value),
    as summaries (Id, Created, RepoTags, Labels), newest first; `untagged`: only those without a tag."""
    filters: dict[str, Any] = {"label": [f"{k}={v}" if v is not None else k for k, v in labels.items()]}
    if untagged:
        filters["dangling"] = True
    try:
        found = engine.sdk.api.images(filters=filters)
    except Exception as exc:  # docker.errors.APIError, requests errors
        raise EngineError(f"cannot list images on {engine.where}: {_reason(exc)}", step=Step.IMAGES) from None
    return sorted(found, key=lambda i: i.get("Created") or 0, reverse=True)


def remove_unused(engine: Engine, image_id: str) -> bool:
    """Remove an image (by ID) unless a container uses it or it is gone; True when removed."""
    from docker.errors import APIError

    try:
        engine.sdk.api.remove_image(image_id, noprune=False)
    except APIError:  # in use (409), or gone already (404)
        return False
    return True


def tag(engine: Engine, image_id: str, ref: str, *, step: str) -> None:
    """Point `ref` (repository:tag) at an image the engine has."""
    from docker.errors import APIError

    repository, _, version = ref.rpartition(":")
    try:
        if not engine.sdk.api.tag(image_id, repository, version, force=True):
            raise EngineError(f"cannot tag {image_id[:19]} as {ref} on {engine.where}", step=step)
    except APIError as exc:
        raise EngineError(f"cannot tag {image_id[:19]} as {ref} on {engine.where}: {_reason(exc)}", step=step) from None


def stream(source: Engine, target: Engine, refs: list[str], *, step: str) -> Moved:
    """`docker save refs` on source, streamed into `docker load` on target (one archive,
    so layers the images share are sent once)."""
    from docker.errors import APIError

    debug(f"save {refs} from {source.where} | load into {target.where}")
    started = time.monotonic()
    sent = [0]
    api = source.sdk.api
    try:
        response = api._get(api._url("/images/get"), params={"names": refs}, stream=True)
        api._raise_for_status(response)
    except APIError as exc:
        raise EngineError(f"cannot save {', '.join(refs)} on {source.where}: {_reason(exc)}", step=step) from None

    def chunks(update: progress.Update) -> Iterator[bytes]:
        for chunk in response.iter_content(CHUNK, decode_unicode=False):
            sent[0] += len(chunk)
            update(sent[0], None)
            yield chunk

    try:
        with progress.TRANSFER[0](f"{', '.join(refs)} to {target.where}") as update:
            loading = list(target.sdk.api.load_image(chunks(update), quiet=True))
        for line in loading:
            if isinstance(line, dict) and (line.get("error") or line.get("errorDetail")):
                raise EngineError(
                    f"loading {', '.join(refs)} into {target.where} failed: "
                    f"{masking.mask(str(line.get('error') or line.get('errorDetail')))}",
                    step=step,
                )
    except APIError as exc:
        raise EngineError(f"loading {', '.join(refs)} into {target.where} failed: {_reason(exc)}", step=step) from None
    except EngineError:
        raise
    except Exception as exc:  # the stream broke: a dropped tunnel, a closed connection
        raise EngineError(
            f"moving {', '.join(refs)} from {source.where} to {target.where} broke off: {_reason(exc)}", step=step
        ) from None
    finally:
        response.close()
    return Moved(tuple(refs), sent[0], round(time.monotonic() - started, 2))


# -- registry ----------------------------------------------------------------------------
def credentials(host: str, *, env_values: dict[str, str] | None, anonymous: bool) -> dict[str, str] | None:
    """The X-Registry-Auth of a registry: from an env file's values, or else from the Docker
    config of the user running the CLI (`docker login`, credential helpers included).
    InputError (exit 2) when neither has any."""
    if anonymous:
        return None
    if env_values is not None:
        auth = {
            "username": env_values["REGISTRY_USERNAME"],
            "password": env_values["REGISTRY_PASSWORD"],
            "serveraddress": host,
        }
    else:
        from docker import auth as docker_auth

        try:
            found = docker_auth.resolve_authconfig(docker_auth.load_config(), host)
        except Exception as exc:  # a broken config file or credential helper
            raise InputError(
                f"registry credentials missing: the Docker config has none usable for {host}: {exc}"
            ) from None
        if not found or not (found.get("password") or found.get("Password") or found.get("IdentityToken")):
            raise InputError(
                f"registry credentials missing: no login for {host} in the Docker config of this user "
                "(run `docker login` with --password-stdin, set registry.env_file, or set "
                "registry.anonymous = true for a registry that needs none); nothing was changed"
            )
        auth = {k.lower(): v for k, v in found.items() if k.lower() in ("username", "password", "identitytoken")}
        auth["serveraddress"] = host
    masking.register(*(v for k, v in auth.items() if k.lower() in ("password", "identitytoken") and v))
    return auth


def _progress_errors(lines: Any, title: str) -> tuple[list[str], str]:
    """(errors, digest) of a push or pull progress stream; its bytes go to progress.TRANSFER."""
    errors, digest = [], ""
    with progress.TRANSFER[0](title) as update:
        layers = progress.Layers(update)
        for line in lines:
            if isinstance(line, dict):
                layers.event(line)
                errors, digest = _said(line, errors, digest)
    return errors, digest


def _said(line: dict, errors: list[str], digest: str) -> tuple[list[str], str]:
    """An event's error (masked) or the pushed image's digest, added to what was said before."""
    if line.get("error") or line.get("errorDetail"):
        errors = [*errors, masking.mask(str(line.get("error") or line.get("errorDetail")))]
    aux = line.get("aux") or {}
    if isinstance(aux, dict) and aux.get("Digest"):
        digest = aux["Digest"]
    return errors, digest


def push(engine: Engine, image_id: str, repository: str, version: str, auth: dict | None, *, step: str) -> str:
    """Tag an image as repository:version and push it; returns repository@sha256:... ."""
    from docker.errors import APIError

    tag(engine, image_id, f"{repository}:{version}", step=step)
    debug(f"push {repository}:{version} from {engine.where}")
    try:
        errors, digest = _progress_errors(
            engine.sdk.api.push(repository, tag=version, stream=True, decode=True, auth_config=auth),
            f"push {repository}:{version}",
        )
    except APIError as exc:
        raise EngineError(f"pushing {repository}:{version} failed: {_reason(exc)}", step=step) from None
    if errors or not digest:
        raise EngineError(f"pushing {repository}:{version} failed: {errors[-1] if errors else 'no digest'}", step=step)
    return f"{repository}@{digest}"


def pull(engine: Engine, reference: str, auth: dict | None, *, repository: str, step: str) -> str:
    """Pull repository@sha256:... (or :tag) on the engine; returns the image ID. The
    reference must be in `repository` (the configured registry's), the only one the
    credentials are sent with."""
    from docker.errors import APIError

    if not references.within(reference, repository):
        raise InputError(f"{reference!r} is not in the registry repository {repository}: not pulled")
    rest = reference[len(repository) + 1 :]  # the digest (sha256:...) or the tag
    debug(f"pull {reference} on {engine.where}")
    try:
        errors, _ = _progress_errors(
            engine.sdk.api.pull(repository, tag=rest, stream=True, decode=True, auth_config=auth),
            f"pull {reference} on {engine.where}",
        )
    except APIError as exc:
        raise EngineError(f"pulling {reference} on {engine.where} failed: {_reason(exc)}", step=step) from None
    found = image(engine, reference)
    if errors or not found:
        raise EngineError(
            f"pulling {reference} on {engine.where} failed: {errors[-1] if errors else 'not there after the pull'}",
            step=step,
        )
    return found["Id"]


def repo_digest(info: dict[str, Any] | None, repository: str) -> str:
    """The repository@sha256:... an image was pushed to or pulled from, if any."""
    for ref in (info or {}).get("RepoDigests") or []:
        if ref.partition("@")[0] == repository:
            return ref
    return ""


def platform(engine: Engine) -> tuple[str, str]:
    """(os, architecture) of an engine, as a registry's index names an image's platform."""
    version = engine.sdk.api.version()
    return str(version.get("Os") or "linux"), str(version.get("Arch") or "amd64")
