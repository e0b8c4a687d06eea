"""The edge's metrics, parsed and turned into rates and quantiles."""

from __future__ import annotations

import pytest

from deployer.core import metrics

TEXT = """# window 60 seconds, in 5-second slots
# TYPE deployer_window_requests_total counter
deployer_window_requests_total{route="live",colour="green",release="aaaaaaaa",class="2xx"} 990
deployer_window_requests_total{route="live",colour="green",release="aaaaaaaa",class="5xx"} 10
deployer_window_requests_total{route="health",colour="green",release="aaaaaaaa",class="2xx"} 7
# TYPE deployer_window_request_duration_seconds histogram
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaaaaaa",le="0.1"} 900
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaaaaaa",le="0.5"} 990
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaaaaaa",le="1"} 1000
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaaaaaa",le="+Inf"} 1000
"""


def test_parse_and_summarise():
    window, series = metrics.parse(TEXT)
    assert window == 60
    green = metrics.by_colour(series, "live")["green"]
    assert green.requests == 1000 and green.errors == 10
    assert green.above(0.5) == 10 and green.above(0.1) == 100
    assert green.quantile(0.5) == pytest.approx(0.1 * 500 / 900)
    assert green.quantile(0.99) == pytest.approx(0.5)  # rank 990 is the 0.5 s bound exactly
    assert metrics.by_colour(series, "health")["green"].requests == 7


def test_quantile_edges():
    assert metrics.quantile({}, 0.99) is None
    assert metrics.quantile({0.1: 0, float("inf"): 0}, 0.5) is None
    assert metrics.quantile({0.1: 0, 1.0: 0, float("inf"): 5}, 0.5) == 1.0  # all beyond the last bound


def test_top_shapes_one_reading_per_colour_and_route():
    from deployer.core import topview
    from deployer.core.state import EdgeState, Record

    state = EdgeState(live="green", records={"green": Record("green", "aaaaaaaa", "v2", (), (), ())})
    reading = topview.snapshot(TEXT, 10, state, "2026-12-07T09:00:00Z")
    assert (reading["live"], reading["live_version"], reading["window_s"]) == ("green", "v2", 60)
    green, blue = reading["colours"]["green"], reading["colours"]["blue"]
    assert (green["role"], green["release"], blue["role"], blue["version"]) == ("live", "aaaaaaaa", "-", None)
    assert green["live"]["rate"] == round(1000 / 60, 2) and green["live"]["error_rate"] == 0.01
    assert green["live"]["p50_ms"] == pytest.approx(55.6, abs=0.1) and green["live"]["p99_ms"] == 500.0
    assert (
        green["preview"]
        == blue["live"]
        == {
            "requests": 0,
            "rate": 0.0,
            "error_rate": 0.0,
            "p50_ms": None,
            "p99_ms": None,
        }
    )
    nothing = topview.snapshot("", 10, EdgeState(), "2026-12-07T09:00:00Z")
    assert nothing["live"] is None and nothing["window_s"] == 10


def test_the_per_service_families_never_mix_into_a_colours_figures():
    """The cumulative view also holds the families for Prometheus (service_metrics.lua): no
    route and release labels, and names that end as the watch's do. They are left out."""
    labels = 'route="live",colour="green",release="aaaaaaaa"'
    text = f"""# TYPE deployer_requests_total counter
deployer_requests_total{{{labels},class="2xx"}} 5
# TYPE deployer_service_requests_total counter
deployer_service_requests_total{{service="api",prefix="/api/",colour="green",class="5xx"}} 7
deployer_service_request_duration_seconds_bucket{{service="api",prefix="/api/",le="+Inf"}} 7
deployer_service_upstream_errors_total{{service="api",prefix="/api/",colour="green"}} 7
deployer_service_in_flight{{service="api",prefix="/a\\"}}b/",colour="green"}} 1
"""
    window, series = metrics.parse(text)
    assert window is None
    assert [(s.route, s.colour, s.release, s.classes) for s in series] == [("live", "green", "aaaaaaaa", {"2xx": 5})]


SERVICES = """# TYPE deployer_service_requests_total counter
deployer_service_requests_total{{service="api",prefix="/api/",colour="green",class="2xx"}} {ok}
deployer_service_requests_total{{service="api",prefix="/a\\"}}b/",colour="green",class="5xx"}} {bad}
deployer_service_requests_total{{service="web",prefix="/",colour="green",class="2xx"}} 3
# TYPE deployer_service_request_duration_seconds histogram
deployer_service_request_duration_seconds_bucket{{service="api",prefix="/api/",le="0.1"}} {fast}
deployer_service_request_duration_seconds_bucket{{service="api",prefix="/api/",le="+Inf"}} {all}
deployer_service_upstream_errors_total{{service="api",prefix="/api/",colour="green"}} {bad}
deployer_service_in_flight{{service="api",prefix="/api/",colour="green"}} 2
deployer_service_in_flight{{service="api",prefix="/a\\"}}b/",colour="green"}} 1
"""


def test_top_figures_each_service_from_the_change_of_its_counters():
    from deployer.core import topview

    before = topview.service_counts(SERVICES.format(ok=100, bad=0, fast=100, all=100))
    after = topview.service_counts(SERVICES.format(ok=190, bad=10, fast=190, all=200))
    assert before["api"]["in_flight"] == 3 and set(before) == {"api", "web"}  # an odd prefix parses
    first = topview.services(None, before, 0)
    assert first["api"] == {
        "rate": None,
        "error_rate": None,
        "p50_ms": None,
        "p99_ms": None,
        "upstream_errors": None,
        "in_flight": 3,
    }
    api = topview.services(before, after, 10.0)["api"]
    assert (api["rate"], api["error_rate"], api["upstream_errors"], api["in_flight"]) == (10.0, 0.1, 10, 3)
    assert api["p50_ms"] == pytest.approx(100 * 50 / 90, abs=0.1) and api["p99_ms"] is not None
    assert topview.services(before, after, 10.0)["web"]["rate"] == 0.0
