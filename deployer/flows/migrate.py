"""The `migrate` step of a release: each service's `migrate` command, run once as a
throwaway container of the new release's image, on the data network, with the service's
env file (its `secrets` as files, as the release gets them). It runs after the verified
pre-release dump and before the new release starts, so a failure stops the release with
live untouched: nothing new has started, and the old colour never stopped.

A migration that fails may have changed the database before it failed (unless it ran in
one transaction). The error names the pre-release dump and the exact command that puts
it back. Migrations must suit both colours at once: expand/contract, see docs/database.md.
"""

from __future__ import annotations

import shlex

from deployer.adapters import task
from deployer.core import names, oneoffs
from deployer.core.steps import Step
from deployer.errors import DeployerError
from deployer.flows.context import Context
from deployer.flows.oneoffs import oneoff_labels


class MigrationError(DeployerError):
    """A release's migration command failed or did not finish in time."""


def run(
    ctx: Context, version: str, release_id: str, colour: str, *, dump: str, env: dict[str, dict[str, str]]
) -> list[str]:
    """Run every service's migration, in the config's order; returns what ran. `env`: the
    services' env files as the release read them."""
    config = ctx.config
    todo = [s for s in config.services.values() if s.migrate]
    if not todo:
        return []
    ran = []
    for s in todo:
        image = s.image_ref(version)
        ctx.say(f"migrate: {s.name}: {shlex.join(s.migrate)} ({image})")
        own = env.get(s.name, {})
        environment = {
            **{k: v for k, v in own.items() if k not in s.secrets},
            "APP_VERSION": version,
            "APP_COLOUR": colour,
            "APP_RELEASE": release_id,
            "APP_SERVICE": s.name,
            **{f"{k}_FILE": f"/run/secrets/{k}" for k in s.secrets},
        }
        result = task.run(
            ctx.engine,
            image,
            list(s.migrate),
            name=f"{config.name}-migrate-{release_id}-{s.name}",
            # an external database is reached over the edge network: the data network has no route out
            network=(names.edge_network if config.database.external else names.data_network)(config.name),
            environment=environment,
            secrets={k: own.get(k, "") for k in s.secrets},
            labels=oneoff_labels(
                ctx,
                oneoffs.MIGRATE,
                command=f"release {version}",
                timeout=s.migrate_timeout,
                **{names.LABEL_RELEASE: release_id, names.LABEL_VERSION: version, names.LABEL_SERVICE: s.name},
            ),
            timeout=s.migrate_timeout,
            step=Step.MIGRATE,
        )
        if result.exit_code != 0:
            what = (
                f"did not finish within services.{s.name}.migrate_timeout = {s.migrate_timeout}s (it was stopped)"
                if result.exit_code == -1
                else f"failed with exit code {result.exit_code}"
            )
            raise MigrationError(
                f"the migration of {s.name} ({version}) {what} after {result.seconds:g}s; live is untouched and "
                f"nothing of {version} started. {_way_back(dump)}",
                step=Step.MIGRATE,
                logs=result.output or "(no output)",
            )
        tail = result.output.splitlines()[-5:]
        for line in tail:
            ctx.say(f"migrate: {s.name} | {line}")
        ctx.say(f"migrate: {s.name} done in {result.seconds:g}s")
        ran.append(s.name)
    return ran


def _way_back(dump: str) -> str:
    if dump and dump != "skipped":
        return (
            "If it changed the database before it failed, the pre-release dump puts it back: "
            f"deployer backup restore {dump} --yes"
        )
    return "No pre-release dump was taken (--no-backup or backup.before_release = false): check the database by hand."
