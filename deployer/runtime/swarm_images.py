"""The deployer's own images on a swarm: built (or found) on the manager and pushed to
[registry], because the nodes pull. Each push starts as soon as its image is built, so it runs
while the next image builds: a push is the registry's and the disk's work, a build the CPU's.
`up --refresh-images` on the test swarm spent 45 s pushing three images one after another
(docs/benchmarks.md, "The suite").

The pushes run in daemon threads. A cancel (Ctrl-C) does not wait for them: the engine stops a
push whose client has gone, and the registry tags nothing it did not receive whole, so a
cancelled `up` leaves the registry's tags as they were."""

from __future__ import annotations

import threading

from deployer.adapters.swarm import Swarm
from deployer.core import masking
from deployer.core.steps import Step
from deployer.errors import DeployerError, EngineError
from deployer.flows import images
from deployer.flows.context import Context
from deployer.runtime.swarm_release import registry_auth


class OwnImages:
    """`build(name)` builds (or finds) one image and starts its push unless told not to;
    `push(name)` starts it later (the edge's, once its site is checked against the image);
    `refs()` waits for every push and returns each image's pinned reference in the registry."""

    def __init__(self, ctx: Context, *, refresh: bool = False) -> None:
        assert ctx.config.registry is not None
        self.ctx, self.refresh = ctx, refresh
        self.fresh = images.fresh_token() if refresh else ""  # one for the three images: they share layers
        self.cluster, self.auth = Swarm(ctx.engine), registry_auth(ctx)
        self.registry = ctx.config.registry.url
        self.local: dict[str, str] = {}
        self.pinned: dict[str, str] = {}
        self.failed: dict[str, DeployerError] = {}
        self.threads: dict[str, threading.Thread] = {}

    def build(self, name: str, *, push: bool = True) -> str:
        ctx = self.ctx
        self.local[name] = images.own_image(
            ctx.engine, name, base_image=ctx.config.base_image, say=ctx.say, fresh=self.fresh
        )
        if push:
            self.push(name)
        return self.local[name]

    def push(self, name: str) -> None:
        """The registry's copy: kept if it is there (unless `refresh`), else pushed in the
        background."""
        target = f"{self.registry}/{self.local[name]}"
        digest = None if self.refresh else self.cluster.digest(target, self.auth)
        if digest is not None:
            self.pinned[name] = f"{target}@{digest}"
            return
        self.ctx.say(f"pushing {target}")
        thread = threading.Thread(target=self._push, args=(name, target), name=f"push-{name}", daemon=True)
        self.threads[name] = thread
        thread.start()

    def _push(self, name: str, target: str) -> None:
        try:
            self.cluster.push(self.local[name], target, auth=self.auth, step=Step.UP)
            digest = self.cluster.digest(target, self.auth)
            if digest is None:
                raise EngineError(f"{target} was pushed, but the registry does not show it", step=Step.UP)
            self.pinned[name] = f"{target}@{digest}"
        except DeployerError as exc:
            self.failed[name] = exc
        except Exception as exc:  # anything else in the thread is the push's failure, told in refs()
            reason = masking.mask(str(exc))
            self.failed[name] = EngineError(f"pushing {target} failed: {reason}", step=Step.UP, command="push")

    def refs(self) -> dict[str, str]:
        """Every image's pinned reference, once every push has ended; the first failure (in
        the order the images were built) is raised after all have ended."""
        for thread in self.threads.values():
            thread.join()
        for name in self.local:
            if name in self.failed:
                raise self.failed[name]
        return dict(self.pinned)
