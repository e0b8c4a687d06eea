"""The edge's access log read back (core/accesslog.py): odd lines skipped, retries and the
edge's own answers in the timing split, the slowest N at or above a threshold."""

from __future__ import annotations

import json

import pytest

from deployer.core import accesslog, site
from deployer.errors import InputError


def line(request_id: str, total: float, service: str = "backend", **fields) -> str:
    entry = {
        "time": "2026-12-07T08:25:44+00:00",
        "request_id": request_id,
        "route": "live",
        "prefix": "/api/" if service == "backend" else "/",
        "colour": "green",
        "release": "1a2b3c4d",
        "service": service,
        "method": "GET",
        "path": "/api/x",
        "status": 200,
        "connect_time": "0.001",
        "header_time": f"{total:.3f}",
        "upstream_time": f"{total:.3f}",
        "time_total": total,
        "bytes": 120,
        **fields,
    }
    return json.dumps(entry)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026/12/07 08:25:44 [crit] 12#12: *3 connect() failed",
        "edge-log-relay: nginx exited with 0",
        '{"time":"2026-12-07T08:25:44+00:00","request_id":"a","time_total":0.1',  # cut short
        "[1, 2]",
        '{"request_id": "a"}',  # no total
        '{"request_id": "a", "time_total": "0.1"}',  # a total that is not a number
        '{"request_id": "a", "time_total": true}',
        '{"request_id": 7, "time_total": 0.1}',
    ],
)
def test_a_line_that_is_not_a_request_is_skipped(text):
    assert accesslog.parse(text) is None


def test_a_request_line_parses_with_its_fields():
    entry = accesslog.parse("  " + line("abc", 0.25) + "\n")
    assert entry is not None and entry["request_id"] == "abc" and entry["time_total"] == 0.25


def test_the_timing_split_in_ms_with_retries_failed_attempts_and_the_edge_s_own_answers():
    assert accesslog.timing(json.loads(line("a", 0.3021))) == {
        "connect": "1 ms",
        "header": "302 ms",
        "upstream": "302 ms",
        "total": "302 ms",
    }
    retried = json.loads(
        line("a", 0.5, connect_time="0.001, 0.002", header_time="-, 0.450", upstream_time="0.010, 0.480")
    )
    assert accesslog.timing(retried) == {
        "connect": "1, 2 ms",
        "header": "-, 450 ms",
        "upstream": "10, 480 ms",
        "total": "500 ms",
    }
    own = json.loads(line("a", 0.0, service="", connect_time="", header_time="", upstream_time=""))
    assert accesslog.timing(own) == {"connect": "edge", "header": "edge", "upstream": "edge", "total": "0 ms"}
    assert "the edge itself" in accesslog.summary(own) and "connect" not in accesslog.summary(own)
    summary = accesslog.summary(retried)
    assert summary.startswith("2026-12-07 08:25:44 GET /api/x 200, backend on green (release 1a2b3c4d): ")
    assert summary.endswith("connect 1, 2 ms, header -, 450 ms, upstream 10, 480 ms, total 500 ms")


def test_the_row_of_the_table():
    cells = accesslog.row(json.loads(line("id-1", 1.5, time="2026-12-07T10:25:44+02:00", path="/api/slow")))
    assert dict(zip(accesslog.COLUMNS, cells, strict=True)) == {
        "time": "2026-12-07 08:25:44",
        "request id": "id-1",
        "service": "backend",
        "prefix": "/api/",
        "status": "200",
        "connect": "1 ms",
        "header": "1500 ms",
        "upstream": "1500 ms",
        "total": "1500 ms",
        "request": "GET /api/slow",
    }
    assert accesslog.row({"request_id": "x", "time": "now", "time_total": 0})[:4] == ["now", "x", "-", "-"]


def test_the_slowest_at_or_above_the_threshold_slowest_first_capped():
    found = accesslog.Slowest(0.2, 3)
    for i, total in enumerate([0.1, 0.5, 0.2, 0.199, 1.2, 0.3, 0.2, 0.4]):
        found.add(line(f"r{i}", total))
    found.add("not json")
    assert [e["request_id"] for e in found.result()] == ["r4", "r1", "r7"]
    assert found.matched == 6  # 0.5 0.2 1.2 0.3 0.2 0.4: at the threshold counts

    ties = accesslog.Slowest(0.2, 1)
    for i in range(3):
        ties.add(line(f"t{i}", 0.2))
    assert [e["request_id"] for e in ties.result()] == ["t0"]  # of equal totals, the earlier
    every = accesslog.Slowest(0.2, 10)
    for i, total in enumerate([0.3, 0.2, 0.3]):
        every.add(line(f"e{i}", total))
    assert [e["request_id"] for e in every.result()] == ["e0", "e2", "e1"]


def test_none_kept_with_a_cap_of_zero_and_the_service_filter():
    none = accesslog.Slowest(0, 0)
    none.add(line("a", 1.0))
    assert none.result() == [] and none.matched == 1

    front = accesslog.Slowest(0.1, 5, service="frontend")
    front.add(line("b", 2.0))
    front.add(line("f", 0.5, service="frontend"))
    front.add(line("e", 3.0, service=""))  # the edge's own answer: of no service
    assert [e["request_id"] for e in front.result()] == ["f"]


def test_a_request_id_s_grammar_is_the_edge_s():
    for good in ("a", "abc-1.2_3", "0123456789abcdef0123456789abcdef", "x" * 200):
        assert accesslog.check_id(good) == good
    for bad in ("", "a b", "a:b", "x" * 201, "id\n", "ü", "a/b"):
        with pytest.raises(InputError, match="--request must be"):
            accesslog.check_id(bad)
    assert site.REQUEST_ID == '"~^[A-Za-z0-9._-]{1,200}$"'  # the edge's map keeps the same ids


def test_an_id_is_found_as_a_whole_word():
    assert accesslog.mentions("[testapp] slow request id=abc-1 GET /api/slow", "abc-1")
    assert not accesslog.mentions("[testapp] slow request id=abc-12 GET", "abc-1")
    assert not accesslog.mentions("x.abc-1", "abc-1")
    assert accesslog.mentions("abc-1", "abc-1")
