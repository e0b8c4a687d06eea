"""The post-release watch's verdict (core/verdict.py): what is judged (the release's own
answers, the upstream's header time), the baseline of the previous release and its floors,
the absolute thresholds, and the per-client rule; and the [watch] keys that set them."""

from __future__ import annotations

import pytest
from test_release_safety import load

from deployer.core import metrics
from deployer.core.verdict import Baseline, Figures, Rules, baseline, figures, judge, limits
from deployer.errors import ConfigError

INF = float("inf")
BOUNDS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, INF)


def upstream(**counts: int) -> dict[float, int]:
    """A cumulative histogram from the count in each bucket (keys like b0_1 for le=0.1)."""
    per = {float(k[1:].replace("_", ".")) if k != "inf" else INF: v for k, v in counts.items()}
    out, running = {}, 0
    for bound in BOUNDS:
        running += per.get(bound, 0)
        out[bound] = running
    return out


def fig(requests=1000, errors=0, slow=0, top_errors=0, top_slow=0, at=1.0) -> Figures:
    """`requests` answers, `slow` of them at about `at` seconds, the rest under 50 ms; the
    address left out had `top_errors` of the 5xx and `top_slow` of the slow ones."""
    buckets = upstream(b0_05=requests - slow, **{f"b{str(at).replace('.', '_')}": slow})
    tops = {b: (top_slow if b < at else 0) for b in (0.1, 0.2, 0.5, 1.0, 2.0)}
    return Figures(requests, errors, 60, buckets, top_errors, tops if top_slow else {}, addresses=10)


ABSOLUTE = Rules(mode="absolute", min_clients=1)


@pytest.mark.parametrize(
    "figures_, verdict",
    [
        (fig(errors=50), "breach"),  # 5 % > 1 %
        (fig(errors=10), "ok"),  # exactly 1 %: within
        (fig(slow=11, at=1.0), "breach"),  # more than 1 % slower than 0.5 s: p99 above it
        (fig(slow=10, at=1.0), "ok"),  # exactly 1 % slower: p99 at the bound
        (fig(requests=49, errors=49, slow=49), "too-few"),  # no verdict, whatever the figures
        (fig(requests=0), "too-few"),
    ],
)
def test_the_absolute_thresholds(figures_, verdict):
    assert judge(figures_, ABSOLUTE, limits(ABSOLUTE, None)).verdict == verdict


METRICS = """# window 60 seconds, in 5-second slots
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="2xx"} 950
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="5xx"} 50
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="edge_429"} 3000
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="edge_503"} 400
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="aborted"} 80
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="1xx"} 7
deployer_window_requests_total{route="probe",colour="green",release="aaaa1111",class="5xx"} 400
deployer_window_requests_total{route="live",colour="blue",release="bbbb2222",class="5xx"} 999
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaa1111",le="0.5"} 1000
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaa1111",le="+Inf"} 4537
deployer_window_upstream_header_seconds_bucket{route="live",colour="green",release="aaaa1111",le="0.3"} 980
deployer_window_upstream_header_seconds_bucket{route="live",colour="green",release="aaaa1111",le="0.5"} 985
deployer_window_upstream_header_seconds_bucket{route="live",colour="green",release="aaaa1111",le="+Inf"} 1000
deployer_window_client_addresses{route="live",colour="green",release="aaaa1111"} 12
deployer_window_top_client_5xx{route="live",colour="green",release="aaaa1111",top="1"} 45
deployer_window_top_client_slow{route="live",colour="green",release="aaaa1111",top="1",above="0.3"} 14
deployer_window_top_client_slow{route="live",colour="green",release="aaaa1111",top="1",above="0.5"} 12
"""


def test_only_the_releases_own_answers_are_judged():
    """The edge's own 429s and 503s, aborts, upgrades, probes and the other colour do not
    count; the latency is the upstream's header time, not the whole exchange."""
    f = figures(METRICS, "green", "aaaa1111", 60)
    assert (f.requests, f.errors, f.top_errors, f.addresses) == (1000, 50, 45, 12)
    assert (f.edge, f.aborted, f.upgrades) == ({"429": 3000, "503": 400}, 80, 7)
    assert f.slow(0.5) == 15 and f.left_out_slow(0.5) == 12  # not the whole exchange's 3537
    assert "not judged: 3000 edge 429, 400 edge 503, 80 aborted, 7 upgrades" in f.text()
    traffic = metrics.live_traffic(METRICS, 60)["green"]
    assert traffic["edge_answers"] == {"429": 3000, "503": 400} and traffic["error_rate"] == 0.05


def test_one_address_cannot_decide_the_verdict():
    rules = Rules(mode="absolute")  # min_clients = 2: the address with the most is left out
    lim = limits(rules, None)
    alone = judge(figures(METRICS, "green", "aaaa1111", 60), rules, lim)
    assert alone.verdict == "ok" and alone.left_out == {"errors_5xx": 45, "slow": 12, "addresses": 1}
    # the same bad requests, spread over many addresses: the heaviest has a few of them
    spread = judge(fig(errors=50, top_errors=5), rules, lim)
    assert spread.verdict == "breach" and "without 5 of the address with the most" in spread.reasons[0]
    slow = judge(fig(slow=40, top_slow=35, at=1.0), rules, lim)
    assert slow.verdict == "ok"  # 5 left of 965: within 1 %
    assert judge(fig(slow=40, top_slow=4, at=1.0), rules, lim).verdict == "breach"
    # min_clients = 1 turns it off (the edge then reports no per-client figures)
    assert judge(fig(errors=50), ABSOLUTE, lim).verdict == "breach"
    assert Rules(min_clients=3).top == 2


def test_the_baseline_leaves_out_the_same_address():
    base = baseline(fig(errors=30, top_errors=25, slow=40, top_slow=38, at=2.0), "bbbb2222")
    assert (base.requests, base.errors) == (975, 5)
    assert base.p99 is not None and base.p99 < 0.05  # the heavy address's 2 s requests are left out
    assert Baseline.parse(base.render()) == Baseline("bbbb2222", 975, 5, round(base.p99, 4), 60)
    assert Baseline.parse("-") is None


def test_relative_limits_come_from_the_baseline_with_floors():
    rules = Rules()  # relative, + 1 point of 5xx, p99 × 2, at least 200 ms
    base = Baseline("bbbb2222", 600, 12, 0.4, 58)  # 2 % of 5xx, p99 400 ms
    lim = limits(rules, base)
    assert lim.relative and lim.error_rate == pytest.approx(0.03) and lim.p99 == pytest.approx(0.8)
    # a near-zero baseline: the floors, not noise
    quiet = limits(rules, Baseline("bbbb2222", 600, 0, 0.004, 58))
    assert quiet.error_rate == pytest.approx(0.01) and quiet.p99 == pytest.approx(0.2)
    # the new release: 2.5 % of 5xx and p99 near 700 ms: within the old one's own figures
    assert judge(fig(errors=25, slow=9, at=1.0), rules, lim).verdict == "ok"
    # 4 % of 5xx, or 2 % of requests between 1 and 2 s: breaches
    assert judge(fig(errors=40), rules, lim).verdict == "breach"
    # inside a bucket the count is interpolated: 20 between 0.5 and 1 s, 8 of them over 0.8 s
    assert judge(fig(slow=20, at=1.0), rules, lim).verdict == "ok"
    over = judge(fig(slow=20, at=2.0), rules, lim)
    assert over.verdict == "breach" and "p99 above 800ms" in over.reasons[0]
    assert over.record()["limits"] == {"error_rate": 0.03, "p99_ms": 800.0, "relative": True}


def test_without_a_usable_baseline_the_absolute_thresholds_judge():
    rules = Rules(max_error_rate=0.05, max_p99=1.0)
    for base in (None, Baseline("bbbb2222", 49, 0, 0.01, 58)):  # none, or fewer than min_requests
        lim = limits(rules, base)
        assert (lim.relative, lim.error_rate, lim.p99) == (False, 0.05, 1.0)
    assert limits(Rules(mode="absolute"), Baseline("bbbb2222", 600, 0, 0.01, 58)).relative is False


def test_the_watch_keys(tmp_path):
    c = load(tmp_path)
    assert (c.watch.mode, c.watch.error_margin, c.watch.p99_factor, c.watch.p99_floor, c.watch.min_clients) == (
        "relative",
        0.01,
        2.0,
        0.2,
        2,
    )
    c = load(
        tmp_path,
        extra='[watch]\nmode = "absolute"\nerror_margin = 0.02\np99_factor = 3\np99_floor = "1s"\nmin_clients = 1\n',
    )
    assert (c.watch.mode, c.watch.error_margin, c.watch.p99_factor, c.watch.p99_floor, c.watch.min_clients) == (
        "absolute",
        0.02,
        3.0,
        1.0,
        1,
    )


@pytest.mark.parametrize(
    "extra, key",
    [
        ('mode = "canary"', "watch.mode"),
        ("mode = 1", "watch.mode"),
        ("error_margin = 1.5", "watch.error_margin"),
        ('error_margin = "1%"', "watch.error_margin"),
        ("p99_factor = 0.5", "watch.p99_factor"),
        ('p99_floor = "50ms"', "watch.p99_floor"),
        ('p99_floor = "soon"', "watch.p99_floor"),
        ("min_clients = 0", "watch.min_clients"),
        ("min_clients = 2.5", "watch.min_clients"),
    ],
)
def test_bad_watch_keys_name_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra=f"[watch]\n{extra}\n")
    assert f": {key}: " in str(info.value)
