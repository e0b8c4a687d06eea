"""How old the infra images are, as `deployer status` says it (core/freshness.py), and the
scripts that replace the edge (core/scripts.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from deployer.core import freshness, scripts

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_an_image_is_old_past_the_threshold_and_the_warning_names_each_old_one():
    fresh = freshness.entry("deployer-edge:a-b", "2026-12-01T10:11:12.123456789Z", {"deployer.base": "debian:x"}, NOW)
    assert fresh == {
        "image": "deployer-edge:a-b",
        "built": "2026-12-01 10:11",
        "age_days": 5,
        "base": "debian:x",
        "old": False,
    }
    old = freshness.entry("deployer-pgvector:a-b", "2026-10-01T00:00:00Z", {}, NOW)
    assert old["age_days"] == 66 and old["old"] is True and old["base"] is None
    assert freshness.warning({"edge": fresh}) is None
    line = freshness.warning({"edge": fresh, "db": old})
    assert "database (66 days)" in line and "edge (" not in line
    assert "deployer up --refresh-images" in line
    assert freshness.entry("x", "", {}, NOW)["age_days"] is None  # no date: no verdict


def test_the_replacement_scripts_stage_a_site_without_reload_and_wait_for_the_drain():
    staged = scripts.stage_site("server {}\n")
    assert "nginx -s reload" not in staged and "mv -f /var/lib/deployer/site.conf.new" in staged
    assert "echo staged" in staged and "echo unchanged" in staged
    drained = scripts.drained(30)
    assert "seq 150" in drained and "/drain" in drained and '*" 0") break' in drained
    assert "-X POST" in scripts.DRAIN and "/drain" in scripts.ANSWERS
