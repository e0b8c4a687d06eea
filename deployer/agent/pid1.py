"""When this container started, from /proc: the healthcheck (deployer/agent/probe.py) and the
schedule's health (deployer/agent/health.py) both ask, so this imports nothing but the
standard library."""

from __future__ import annotations

import os


def container_started() -> float | None:
    """When this container's PID 1 (the schedule's init) started, as an epoch second, from
    /proc: a fact that needs no file of ours. None when /proc does not say. Never later than
    the real start (the boot time is read in whole seconds)."""
    try:
        with open("/proc/1/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime: clock ticks after boot
        with open("/proc/stat", encoding="ascii") as fh:
            booted = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
