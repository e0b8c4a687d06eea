"""The backup agent: runs inside the `backup` container of the infrastructure, next to the
database on the data network, and owns the dumps folder mounted at /backups.

It may import only the standard library, croniter, `deployer.core`, `deployer.errors` and
itself: the image has Debian's python3, python3-croniter, PostgreSQL 17's client and zstd,
and nothing from PyPI.

    commands   the command line (schedule, health, status, list, info, dump, verify,
               record, prune, fetch, restore, cancel) and its JSON-lines output
    boot       settings, secrets, the folder's owner and mode, dropping root
    folder     the dumps folder as the catalogue: judge, lock, publish, delete, clean up
    postgres   pg_dump, pg_restore and psql over the data network (PGPASSFILE only)
    dump       take one dump, atomically, with its sidecars
    checks     full checks (sha256 + every data block), records, streaming a dump out
    prune      retention, after re-hashing the dump it relies on
    restore    safety dump, then an all-or-nothing pg_restore
    schedule   the loop: dump, verify, prune on time; re-verify; survive every error
    health     the deadline (from the folder's truth), health, status
    probe      the container's healthcheck: reads the deadline file, nothing else
    report     the status file, the webhook, the log
"""
