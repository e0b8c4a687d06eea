"""`deployer backup restore`: check the dump, take a safety dump of the target, restore, report."""

from __future__ import annotations

from collections.abc import Callable

from deployer import engine
from deployer.backup import catalogue, naming, restore as loader, service
from deployer.backup import verify as checks
from deployer.backup.naming import Metadata
from deployer.errors import BackupError

STEP = "restore"


def restore(
    config, meta: Metadata, database: str, *, memory: str | None, say: Callable[[str], None]
) -> list[tuple[str, int]]:
    container = config.db_container
    attrs = engine.container_state(container)
    if not attrs or not attrs["State"].get("Running"):
        raise BackupError(f"the database container {container} is not running", step=STEP)
    folder = catalogue.folder_of(config)
    checks.check_sha(folder, meta, STEP)
    exists = loader.database_exists(container, database, step=STEP)
    if exists:
        safety = service.take(
            config, label=f"pre-restore safety ({database})", verify=True, database=database, step="safety dump", say=say
        )
        say(f"safety dump of {database}: {safety}")
    else:
        say(f"database {database} does not exist: creating it")
    used = loader.load(
        container, naming.dump_file(folder, meta.name), database, create=not exists, portable=False, step=STEP, memory=memory
    )
    say(f"restored {meta.name} into {database} (maintenance_work_mem={used})")
    return loader.table_counts(container, database, step=STEP)
