"""Whether `up` would restart a swarm's database (core/dbchange.py, runtime/swarm_dbguard.py)."""

from __future__ import annotations

from deployer.core.dbchange import DB_SPEC_LABEL, db_change, db_spec_digest

OURS = "registry:5000/deployer-pgvector:0123456789ab-aaaaaaaaaaaa@sha256:" + "1" * 64
REBUILT = "registry:5000/deployer-pgvector:0123456789ab-bbbbbbbbbbbb@sha256:" + "2" * 64
NEWER_FILES = "registry:5000/deployer-pgvector:ffffffffffff-aaaaaaaaaaaa@sha256:" + "3" * 64


def service(**changes) -> dict:
    base = {
        "image": OURS,
        "environment": {"POSTGRES_DB": "app"},
        "deploy": {"replicas": 1, "labels": {"deployer.role": "db"}, "resources": {"limits": {"memory": "1g"}}},
    }
    return {**base, **changes}


def test_the_digest_leaves_out_the_image_and_its_own_label_and_sees_every_setting():
    spec = db_spec_digest(service())
    assert db_spec_digest(service(image=REBUILT)) == spec
    labelled = service(deploy={**service()["deploy"], "labels": {"deployer.role": "db", DB_SPEC_LABEL: spec}})
    assert db_spec_digest(labelled) == spec
    memory = service(deploy={**service()["deploy"], "resources": {"limits": {"memory": "2g"}}})
    assert db_spec_digest(memory) != spec
    assert db_spec_digest(service(environment={"POSTGRES_DB": "other"})) != spec


def test_what_would_restart_the_database():
    spec = db_spec_digest(service())
    assert db_change(OURS, OURS, spec, spec, own_repository="deployer-pgvector") == ""
    assert db_change(OURS, REBUILT, spec, spec, own_repository="deployer-pgvector") == "newer build"
    assert db_change(OURS, NEWER_FILES, spec, spec, own_repository="deployer-pgvector") == "image"
    assert db_change(OURS, OURS, spec, "0" * 16, own_repository="deployer-pgvector") == "settings"
    assert db_change("postgres:16", "postgres:17", spec, spec, own_repository="deployer-pgvector") == "image"
    assert db_change("postgres:17", "postgres:17", None, spec, own_repository="deployer-pgvector") == "", (
        "deployed before the label: the image alone is compared, once"
    )
