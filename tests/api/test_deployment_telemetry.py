"""Vamp's read side of deployments: health per deployment, cluster and service, and metrics per
cluster port and service, from agent-style metric events posted through the API (docs/decisions/0042)."""
from __future__ import annotations

import time

import pytest

OLD, NEW = "sava/sava/sava:1.0.0/webport", "sava/sava/sava:1.1.0/webport"
INTERNAL = "sava/sava/webport"


@pytest.fixture()
def seeded(api):
    from chalicelib.store.artifact_store import Write
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    scale = {"cpu": 1, "memory": "1GB", "instances": 1}
    deployment = {"name": "sava", "clusters": {
        "sava": {"services": [{"breed": {"name": "sava:1.0.0"}, "scale": scale},
                              {"breed": {"name": "sava:1.1.0"}, "scale": scale}],
                 "gateways": {"webport": {"routes": {"sava:1.0.0": {"weight": "80%"}, "sava:1.1.0": {"weight": "20%"}}}}},
        "db": {"services": [{"breed": {"name": "db:1"}, "scale": scale}]}}}
    gateway = {"name": INTERNAL, "port": "40000/http", "metadata": {"deployment": "sava"},
               "routes": {OLD: {"weight": "80%"}, NEW: {"weight": "20%"}}}
    DynamoDBArtifactStore().apply("default", [Write("gateways", INTERNAL, gateway, None),
                                              Write("deployments", "sava", deployment, None)])
    body = {"status": "applied", "generation": 0, "sent": time.time(), "interval": 5.0}
    assert api.put("/api/v1/vga/nodes/n1", body, token=api.token_of("agent")).status_code == 200
    return api


def _window(api, route, figures):
    tags = [f"gateways:{INTERNAL}"] + ([f"routes:{route}"] if route else [])
    events = [{"tags": tags + [f"metrics:{m}"], "type": "metrics", "value": v} for m, v in figures.items()]
    assert api.post("/api/v1/events", events, token=api.token_of("agent")).status_code == 201


def test_a_5xx_on_one_service_makes_it_its_cluster_and_its_deployment_unhealthy(seeded):
    api = seeded
    _window(api, None, {"requests": 100, "errors": 3, "responseTime": 20})
    _window(api, OLD, {"requests": 80, "errors": 0, "responseTime": 10})
    _window(api, NEW, {"requests": 20, "errors": 3, "responseTime": 60})
    base = "/api/v1/health/deployments/sava"
    new = api.get(f"{base}/clusters/sava/services/sava:1.1.0").json
    assert new["value"] == 0 and NEW in new["reason"] and new["window"] == 60
    assert api.get(f"{base}/clusters/sava/services/sava:1.0.0").json == {"value": 1, "window": 60}
    assert api.get(f"{base}/clusters/sava").json["value"] == 0
    assert api.get(f"{base}/clusters/db").json == {"value": 1, "window": 60}
    assert api.get(base).json["value"] == 0
    assert api.get(f"{base}?window=5").json["window"] == 5


def test_a_healthy_deployment_is_1_at_every_level(seeded):
    api = seeded
    _window(api, OLD, {"requests": 80, "errors": 0})
    _window(api, NEW, {"requests": 20, "errors": 0})
    for path in ("", "/clusters/sava", "/clusters/sava/services/sava:1.1.0"):
        assert api.get(f"/api/v1/health/deployments/sava{path}").json == {"value": 1, "window": 60}, path


def test_the_workflow_built_in_publishes_the_same_figures(seeded):
    """One implementation: the `health` built-in's per-deployment events agree with the API."""
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.workflows import runs

    api = seeded
    _window(api, NEW, {"requests": 20, "errors": 1})
    assert api.post("/api/v1/workflows", {"name": "h", "breed": "health",
                                          "schedule": {"time": "PT1H"}}).status_code in (201, 202)
    runs.run(DynamoDBArtifactStore(), "default", "h")
    published = api.get("/api/v1/events?tag=health&type=health&per_page=100").json
    figures = {tuple(t for t in e["tags"] if t.startswith(("deployments:", "clusters:", "services:"))): e["value"]
               for e in published}
    for path, tags in (("", ("deployments:sava",)), ("/clusters/sava", ("deployments:sava", "clusters:sava")),
                       ("/clusters/db/services/db:1", ("deployments:sava", "clusters:db", "services:db:1")),
                       ("/clusters/sava/services/sava:1.1.0", ("deployments:sava", "clusters:sava", "services:sava:1.1.0"))):
        assert figures[tags] == api.get(f"/api/v1/health/deployments/sava{path}").json["value"], path


def test_metrics_of_a_cluster_port_and_of_a_service(seeded):
    api = seeded
    _window(api, None, {"requests": 100, "responseTime": 20})
    _window(api, None, {"requests": 50, "responseTime": 30})
    _window(api, OLD, {"requests": 80, "responseTime": 10})
    _window(api, NEW, {"requests": 20, "responseTime": 60})
    base = "/api/v1/metrics/deployments/sava/clusters/sava"
    assert api.get(f"{base}/ports/webport/rate?window=10").json == {"value": 15.0, "window": 10}
    assert api.get(f"{base}/ports/webport/responseTime").json["value"] == 25.0
    assert api.get(f"{base}/services/sava:1.1.0/ports/webport/rate?window=10").json["value"] == 2.0
    assert api.get(f"{base}/services/sava:1.1.0/ports/webport/responseTime").json["value"] == 60.0
    assert api.get(f"{base}/services/sava:1.0.0/ports/webport/requests").json["value"] == 80


def test_unknown_names_are_404s_naming_them_and_a_bad_window_a_400(seeded):
    api = seeded
    cases = {"/api/v1/health/deployments/nope": "deployment",
             "/api/v1/health/deployments/sava/clusters/nope": "cluster",
             "/api/v1/health/deployments/sava/clusters/sava/services/nope": "service",
             "/api/v1/metrics/deployments/nope/clusters/sava/ports/webport/rate": "deployment",
             "/api/v1/metrics/deployments/sava/clusters/nope/ports/webport/rate": "cluster",
             "/api/v1/metrics/deployments/sava/clusters/sava/ports/nope/rate": "port",
             "/api/v1/metrics/deployments/sava/clusters/db/ports/webport/rate": "port",
             "/api/v1/metrics/deployments/sava/clusters/sava/services/nope/ports/webport/rate": "service",
             "/api/v1/metrics/deployments/sava/clusters/sava/ports/webport/colour": "metric"}
    for path, field in cases.items():
        r = api.get(path)
        assert r.status_code == 404 and r.json["errors"][0]["path"] == field, (path, r.json)
    for path in ("/api/v1/health/deployments/sava?window=0",
                 "/api/v1/metrics/deployments/sava/clusters/sava/ports/webport/rate?window=x"):
        r = api.get(path)
        assert r.status_code == 400 and r.json["errors"][0]["path"] == "window", path


def test_another_namespace_does_not_see_the_deployment(seeded):
    r = seeded.get("/other/api/v1/health/deployments/sava")
    assert r.status_code == 404
