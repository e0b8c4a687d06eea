"""Step names, written once. Progress lines, errors ("failed in step 'health'"), the step
timings of a release and its history entry all use these."""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    # a release, in order
    LOCK = "lock"
    PREFLIGHT = "preflight"
    IMAGES = "images"
    BACKUP = "backup"
    MIGRATE = "migrate"
    START = "start"
    HEALTH = "health"
    SMOKE = "smoke"
    SWITCH = "switch"
    RETIRE = "retire"
    WATCH = "watch"
    # other commands
    CONFIG = "config"
    ENGINE = "engine"
    EDGE = "edge"
    CHECK = "check"
    VERIFY = "verify"
    UNDO = "undo"
    UP = "up"
    DOWN = "down"
    BUILD = "build"
    RESTORE = "restore"
    FETCH = "fetch"
    STATUS = "status"
    # the parts of other commands that an error can name
    DUMP = "dump"
    DRILL = "drill"
    EXEC = "exec"
    HISTORY = "history"
    INSPECT = "inspect"
    LIST = "list"
    LOGS = "logs"
    MAINTENANCE = "maintenance"
    METRICS = "metrics"
    PAGE = "page"
    PRUNE = "prune"
    PUSH = "push"
    READ_HISTORY = "read history"
    READ_ROUTES = "read routes"
    REMOVE = "remove"
    RE_VERIFY = "re-verify"
    SAFETY_DUMP = "safety dump"
    SCHEDULED_PRUNE = "scheduled prune"
    TLS = "tls"
    TOP = "top"
    UNLOCK = "unlock"
    WRITE_FILES = "write files"


RELEASE = (
    Step.LOCK,
    Step.PREFLIGHT,
    Step.IMAGES,
    Step.BACKUP,
    Step.MIGRATE,
    Step.START,
    Step.HEALTH,
    Step.SMOKE,
    Step.SWITCH,
    Step.WATCH,
    Step.RETIRE,
)

WHAT = {
    Step.LOCK: "take the release lock and read the route state",
    Step.PREFLIGHT: "check that each service's database login connects",
    Step.IMAGES: "check that every service's image exists on the engine",
    Step.BACKUP: "dump the database and verify the dump",
    Step.MIGRATE: "run each service's migration command, from the new release's image",
    Step.START: "start the new release beside the idle colour's old standby",
    Step.HEALTH: "wait until every service of the new release is healthy",
    Step.SMOKE: "fetch the smoke paths through the preview route",
    Step.SWITCH: "make the new release live and verify it through the live route",
    Step.WATCH: "watch the new live release's error rate and latency; roll back on a breach",
    Step.RETIRE: "stop the idle colour's previous release (the old standby), prune old images",
}
