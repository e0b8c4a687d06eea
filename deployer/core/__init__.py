"""The pure core: rules, plans and builders. Nothing here does I/O, so all of it is unit tested.

names      every name and label the deployer gives to what it creates
versions   the version (image tag) and colour grammar
state      the edge's route state: the live colour and each colour's current release
compose    the compose file of one release, and of the infrastructure, as data
site       the edge's nginx site, rendered from its template
scripts    the shell scripts that run inside the edge (lock, switch, commit, probe, ...)
probe      the one probe rule: what the edge's curl fetches and how its answer is judged
steps      the steps of a release, named once for progress, errors, timings and history
history    history entries
lockrecord the lock's holder record and its lease
metrics    the edge's metrics: parsed, summed and turned into rates and quantiles
accesslog  the edge's access log read back: its lines parsed, the slowest kept, the timing split
schedule   when the next backup is due
"""
