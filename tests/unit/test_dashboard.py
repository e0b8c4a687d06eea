"""The Grafana dashboard of docs/observability.md (docs/grafana/deployer.json): valid JSON in
Grafana's dashboard model, with a $service variable, and every PromQL expression it uses names
only metric families that the edge exports, by labels those families have.

The families are read from the Lua that renders them (service_metrics.lua's FAMILIES, which
tests/lua/service_metrics_spec.lua holds to the view's TYPE lines). A real Prometheus runs each
expression against real traffic in tests/integration/test_prometheus.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "deployer.json"
LUA = ROOT / "deployer" / "assets" / "edge" / "lua" / "deployer" / "service_metrics.lua"
HISTOGRAM = "deployer_service_request_duration_seconds"
LABELS = {"service", "prefix", "colour", "class", "le"}  # the families' labels (le: the histogram's)
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "or", "max", "without", "increase"}


def exported() -> set[str]:
    """The families service_metrics.lua renders, and the histogram's series names."""
    block = re.search(r"M\.FAMILIES = \{(.*?)\}", LUA.read_text(), re.S)
    assert block, "service_metrics.lua has no M.FAMILIES"
    families = set(re.findall(r'"(deployer_[a-z_]+)"', block.group(1)))
    assert HISTOGRAM in families
    return families | {HISTOGRAM + suffix for suffix in ("_bucket", "_count", "_sum")}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] for t in p["targets"]]


def test_the_dashboard_is_a_grafana_dashboard_with_a_service_variable():
    d = dashboard()
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    service = variables["service"]
    assert service["type"] == "query" and service["multi"] and service["includeAll"]
    assert service["query"]["query"] == "label_values(deployer_service_requests_total, service)"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["type"] == "timeseries" and p["datasource"]["uid"] == "${datasource}", p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"] and len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]


def test_the_dashboard_shows_what_the_issue_asks_for():
    text = " ".join(expr for _, expr in expressions())
    assert "rate(deployer_service_requests_total" in text  # request rate
    assert 'class="5xx"' in text  # 5xx share
    assert "histogram_quantile(0.5," in text and "histogram_quantile(0.99," in text
    assert "deployer_service_in_flight" in text and "deployer_service_upstream_errors_total" in text


def test_every_expression_names_only_exported_families_and_their_labels():
    families = exported()
    for title, expr in expressions():
        assert 'service=~"$service"' in expr, f"{title}: not filtered by $service"
        bare = re.sub(r'"[^"]*"', '""', expr)  # label values and quantiles' strings out
        names = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r"\[[^\]]*\]", "", bare)))
        metrics = {n for n in names if n.startswith("deployer_")}
        assert metrics, f"{title}: no metric in {expr}"
        assert metrics <= families, f"{title}: {sorted(metrics - families)} are not exported by the edge"
        # what is left: PromQL's own words and label names of those families
        labels = names - metrics - PROMQL_WORDS
        assert labels <= LABELS, f"{title}: unknown labels or functions {sorted(labels - LABELS)}"
        if "histogram_quantile" in expr:
            assert HISTOGRAM + "_bucket" in metrics and "le" in names, f"{title}: a quantile needs the buckets by le"
