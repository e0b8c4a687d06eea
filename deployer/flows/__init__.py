"""Flows: the order of the steps of each command, and their undo. The only layer that
combines adapters; each flow takes a Context and reports progress through it.

    release   images, backup, start, health, smoke, switch, retire (with undo from the edge's truth)
    switch    the instant rollback: one exec in the edge
    infra     `up` and `down`: networks, the edge, the database, the backup service
    status    what the host says: route state, labels, history, metrics
    images    build, check and describe the app's images
    lock      the release lock's lease, renewed while a command holds it
    runner    the step runner: timings, the undo stack, failures into the history
"""
