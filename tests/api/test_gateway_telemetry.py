"""Health and metrics of gateways and routes, from agent-style metric events posted through the API."""
from __future__ import annotations

import time


def _node_reports(api):
    """A gateway agent acknowledging (health is 0 while no node reports: test_gateway_nodes)."""
    body = {"status": "applied", "generation": 0, "sent": time.time(), "interval": 5.0}
    assert api.put("/api/v1/vga/nodes/n1", body, token=api.token_of("agent")).status_code == 200


def _window(api, gateway, route, figures):
    events = []
    for metric, value in figures.items():
        tags = [f"gateways:{gateway}", f"metrics:{metric}"] + ([f"routes:{route}"] if route else [])
        events.append({"tags": tags, "type": "metrics", "value": value})
    assert api.post("/api/v1/events", events, token=api.token_of("agent")).status_code == 201


def test_health_and_metrics_of_a_gateway_and_its_routes(api):
    _node_reports(api)
    _window(api, "sava/9050", None, {"requests": 100, "errors": 0, "rate": 10, "responseTime": 12.5, "p99": 40})
    _window(api, "sava/9050", "sava/sava/sava:1.0.0/webport", {"requests": 80, "errors": 0, "p99": 30})
    _window(api, "sava/9050", "sava/sava/sava:1.1.0/webport", {"requests": 20, "errors": 3, "p99": 90})
    _window(api, "sava/9050", None, {"requests": 60, "errors": 0, "responseTime": 7.5, "p99": 20})
    g = "sava%2F9050"
    assert api.get(f"/api/v1/health/gateways/{g}").json == {"value": 1, "window": 60}
    assert api.get(f"/api/v1/health/gateways/{g}/routes/sava%2Fsava%2Fsava:1.1.0%2Fwebport").json["value"] == 0
    assert api.get(f"/api/v1/health/gateways/{g}/routes/sava%2Fsava%2Fsava:1.0.0%2Fwebport").json["value"] == 1
    assert api.get(f"/api/v1/metrics/gateways/{g}/requests").json["value"] == 160  # route events not counted twice
    assert api.get(f"/api/v1/metrics/gateways/{g}/rate?window=10").json == {"value": 16.0, "window": 10}
    assert api.get(f"/api/v1/metrics/gateways/{g}/responseTime").json["value"] == 10.0
    assert api.get(f"/api/v1/metrics/gateways/{g}/p99").json["value"] == 40
    assert api.get(f"/api/v1/metrics/gateways/{g}/routes/sava%2Fsava%2Fsava:1.1.0%2Fwebport/p99").json["value"] == 90


def test_no_data_is_healthy_and_has_no_latency(api):
    _node_reports(api)
    assert api.get("/api/v1/health/gateways/none").json["value"] == 1
    assert api.get("/api/v1/metrics/gateways/none/p99").json["value"] is None
    assert api.get("/api/v1/metrics/gateways/none/requests").json["value"] == 0


def test_bad_window_and_unknown_metric(api):
    r = api.get("/api/v1/health/gateways/x?window=0")
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "window"
    assert api.get("/api/v1/metrics/gateways/x/colour").status_code == 404
