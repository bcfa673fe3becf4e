"""GET/POST /api/v1/events: tag expansion, AND of tags, type, time range, aggregators."""
from __future__ import annotations


def _post(api, events):
    r = api.post("/api/v1/events", events)
    assert r.status_code == 201, r.body
    return r.json


def test_post_one_and_a_list_then_query_by_tags(api):
    one = _post(api, {"tags": ["deployments:sava", "clusters:sava"], "value": {"x": 1}})
    assert one["type"] == "event" and "deployments" in one["tags"] and one["timestamp"].endswith("Z")
    _post(api, [{"tags": ["deployments:other"], "value": 2}, {"tags": ["gateways:web"], "value": 3, "type": "note"}])
    metric = _post(api.as_role("agent", name="node-1"), {"tags": ["gateways:web"], "value": 4, "type": "metrics"})
    assert metric["posted_by"] == {"name": "node-1", "role": "agent"}  # who posted it, kept with it
    assert len(api.get("/api/v1/events?tag=deployments").json) == 2
    assert len(api.get("/api/v1/events?tag=deployments&tag=clusters:sava").json) == 1
    assert [e["value"] for e in api.get("/api/v1/events?type=metrics").json] == [4]
    assert [e["value"] for e in api.get("/api/v1/events?tag=gateways:web").json] == [4, 3]


def test_time_range_and_aggregators(api):
    _post(api, [{"tags": ["m"], "value": {"v": v}, "timestamp": f"2026-01-01T00:00:0{v}Z", "type": "metric"}
                for v in range(1, 6)])
    r = api.get("/api/v1/events?tag=m&gte=2026-01-01T00:00:02Z&lt=2026-01-01T00:00:05Z")
    assert [e["value"]["v"] for e in r.json] == [4, 3, 2]  # newest first
    assert r.headers["X-Total-Count"] == "3"
    assert api.get("/api/v1/events?tag=m&aggregator=average&field=v").json == {"value": 3}
    assert api.get("/api/v1/events?tag=m&aggregator=count").json == {"value": 5}
    body = {"tags": ["m"], "timestamp": {"gt": "2026-01-01T00:00:03Z"}, "aggregator": {"type": "max", "field": "v"}}
    assert api.post("/api/v1/events/get", body).json == {"value": 5}


def test_bad_events_are_400(api):
    r = api.post("/api/v1/events", {"tags": [], "value": 1})
    assert r.status_code == 400 and r.json["errors"][0]["path"].startswith("tags")
    r = api.post("/api/v1/events", [{"tags": ["a"]}, {"tags": ["b"], "type": "bad type!"}])
    assert r.status_code == 400 and r.json["errors"][0]["path"].startswith("[1].type")
    assert api.get("/api/v1/events").json == []
    assert api.get("/api/v1/events?aggregator=median").status_code == 400
