"""What `deployer status` says about a Docker Engine older than 28 (core/exposure.py)."""

from __future__ import annotations

from deployer.core import exposure


def test_an_engine_older_than_28_is_named_with_what_the_lan_reaches():
    assert exposure.major("20.10.24+dfsg1") == 20 and exposure.major("28.0.0") == 28 and exposure.major("?") is None
    warning = exposure.lan_warning({"the local engine": "20.10.24+dfsg1"})
    assert warning and "20.10.24+dfsg1 on the local engine" in warning
    assert "127.0.0.1" in warning and "docs/security.md" in warning
    nodes = exposure.lan_warning({"node-a": "26.1.5", "node-b": "28.3.3", "node-c": "27.5.1"})
    assert nodes and "26.1.5 on node-a, 27.5.1 on node-c)" in nodes and "node-b" not in nodes


def test_engine_28_and_unknown_versions_get_no_warning():
    assert exposure.lan_warning({"the local engine": "28.0.0"}) is None
    assert exposure.lan_warning({"ssh://deploy@host": "29.1.2"}) is None
    assert exposure.lan_warning({"x": ""}) is None  # unknown: nothing is claimed
