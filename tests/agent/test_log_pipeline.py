"""Parsing and aggregation of access-log lines: no servers."""
from __future__ import annotations

import json

import pytest

from agent.logs.aggregator import Aggregator, bucket_of, bucket_value, to_events
from agent.logs.parser import parse
from agent.logs.receiver import Pipeline
from agent.metrics import AgentMetrics
from tests.agent.helpers import line, sample


def test_parse_derives_gateway_route_day_and_document():
    r = parse(line(tt=42, status=503))
    assert (r.gateway, r.route, r.status, r.tt, r.day) == ("sava/9050", "v1", 503, 42, "2023.11.14")
    doc = json.loads(r.doc)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert doc["gateway"] == "sava/9050" and doc["route"] == "v1" and doc["Tt"] == 42


def test_parse_keeps_backslashes_of_the_request_line():
    r = parse(line(request="GET /a\\qb\\u0041 HTTP/1.1"))
    assert json.loads(r.doc)["request"] == "GET /a\\qb\\u0041 HTTP/1.1"


@pytest.mark.parametrize("raw", [b"", b"not json", line()[:50], b'{"frontend":"x"}', b"[1,2]"])
def test_parse_rejects_broken_lines(raw):
    assert parse(raw) is None


def test_foreign_proxy_names_are_shipped_but_not_summarised():
    r = parse(line(frontend="stats", backend="stats"))
    assert (r.gateway, r.route) == (None, None)
    agg = Aggregator()
    agg.add(r.gateway, r.route, r.status, r.tt)
    assert agg.flush()[0] == {}


def test_histogram_is_exact_below_64ms_and_within_1_64_above():
    for v in range(64):
        assert bucket_value(bucket_of(v)) == v
    for v in list(range(64, 5000)) + [10**6, 2**31 - 1]:
        assert abs(bucket_value(bucket_of(v)) - v) <= v / 64


def test_percentiles_on_known_inputs():
    agg = Aggregator()
    for tt in range(1, 101):  # 1..100 ms, once each
        agg.add("g", "r", 200, tt)
    series, _ = agg.flush()
    s = series[("g", "r")]
    assert s.percentile(50) == 50  # exact range
    assert abs(s.percentile(99) - 99) <= 99 / 64
    assert abs(s.percentile(95) - 95) <= 95 / 64

    agg = Aggregator()
    for _ in range(990):
        agg.add("g", "r", 200, 20)
    for _ in range(10):
        agg.add("g", "r", 200, 3000)
    s = agg.flush()[0][("g", "r")]
    assert s.percentile(50) == 20 and s.percentile(99) == 20
    assert abs(s.percentile(99.5) - 3000) <= 3000 / 64


def test_window_events_per_gateway_and_route():
    agg = Aggregator()
    for i in range(100):
        agg.add("sava/9050", "v1", 500 if i < 5 else 200, 10)
    for i in range(50):
        agg.add("sava/9050", "v2", 200, 30)
    agg.add("sava/9050", None, 503, -1)  # answered by HAProxy itself: gateway level only
    series, _ = agg.flush()
    events = to_events(series, 10.0)
    assert all(e["type"] == "metrics" and set(e) == {"tags", "type", "value", "timestamp"} for e in events)
    values = {tuple(e["tags"]): e["value"] for e in events}
    g = "gateways:sava/9050"
    assert values[(g, "metrics:requests")] == 151
    assert values[(g, "metrics:errors")] == 6
    assert values[(g, "metrics:rate")] == 15.1
    assert values[(g, "metrics:responseTime")] == pytest.approx((100 * 10 + 50 * 30) / 150, abs=0.001)
    assert values[(g, "routes:v1", "metrics:requests")] == 100
    assert values[(g, "routes:v1", "metrics:errors")] == 5
    assert values[(g, "routes:v2", "metrics:p99")] == 30
    assert values[(g, "routes:v1", "metrics:p50")] == 10
    assert not any("routes:None" in t for tags in values for t in tags)
    assert {t[-1] for t in values} == {f"metrics:{m}" for m in
                                       ("requests", "errors", "rate", "p50", "p95", "p99", "responseTime", "histogram")}
    assert values[(g, "routes:v1", "metrics:histogram")] == [[10.0, 100]]  # route level only
    assert (g, "metrics:histogram") not in values


def test_pipeline_counts_and_batches():
    metrics, shipped = AgentMetrics(), []
    p = Pipeline(Aggregator(), metrics, lambda day, doc: shipped.append((day, doc)))
    for _ in range(10):
        p.feed(line())
    p.feed(b"garbage")
    assert sample(metrics, "vamp_agent_log_lines_received_total") == 11
    assert sample(metrics, "vamp_agent_log_lines_invalid_total") == 1
    assert len(shipped) == 10 and shipped[0][0] == "2023.11.14"
