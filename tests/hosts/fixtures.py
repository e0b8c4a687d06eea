"""pytest fixtures for real remote Docker hosts. Import them where needed (e.g. from conftest.py):

    from hosts.fixtures import remote_host, remote_host_factory, swarm_cluster, testweb_image  # noqa: F401

Every fixture removes what it made (containers, volumes, networks) even when the test fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from .remote import WEB_IMAGE, RemoteHost, docker_client, ensure_image
from .swarm import SwarmCluster

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


@pytest.fixture(scope="module")
def remote_host() -> Iterator[RemoteHost]:
    """One started RemoteHost (dockerd 26 + sshd) shared by the tests of a module."""
    with RemoteHost() as host:
        yield host


@pytest.fixture
def remote_host_factory() -> Iterator[Callable[..., RemoteHost]]:
    """`make(**RemoteHost kwargs) -> started RemoteHost`; all of them are removed after the test."""
    hosts: list[RemoteHost] = []

    def make(**kwargs) -> RemoteHost:
        host = RemoteHost(**kwargs)
        hosts.append(host)
        return host.start()

    try:
        yield make
    finally:
        for host in hosts:
            host.remove()


@pytest.fixture(scope="module")
def swarm_cluster() -> Iterator[SwarmCluster]:
    """A formed 3-node swarm (1 manager, 2 workers) plus an insecure registry, shared by a module."""
    with SwarmCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def testweb_image() -> str:
    """`deployer-testweb:<hash>`: debian slim + python3 answering GET / on :8080 with its hostname."""
    return ensure_image(WEB_IMAGE, client=docker_client())
