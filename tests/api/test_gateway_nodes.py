"""Gateway nodes' acknowledgements through the API: stored per node, shown on the gateway and in
/vga/nodes (stale, silent), refused with a 4xx when malformed; health reflects silent agents."""
from __future__ import annotations

import time

import pytest


def ack(api, node, generation, *, status="applied", sent=None, namespace_prefix="", **extra):
    body = {"node": node, "generation": generation, "checksum": "sha256:" + "0" * 64, "status": status,
            "sent": time.time() if sent is None else sent, "interval": 1.0, **extra}
    return api.put(f"{namespace_prefix}/api/v1/vga/nodes/{node}", body, token=api.token_of("agent"))


def gateway(api, name="shop"):
    r = api.post("/api/v1/gateways", {"name": name, "port": "9050/http", "routes": {"a": {"weight": "100%"}}})
    assert r.status_code in (201, 202), r.body
    return api.get(f"/api/v1/gateways/{name}")


def test_a_gateway_shows_which_nodes_run_which_generation(api):
    generation = 1  # the namespace's first gateway write
    gateway(api)
    assert ack(api, "node-a", generation).status_code == 200
    assert ack(api, "node-b", generation - 1).status_code == 200
    shown = api.get("/api/v1/gateways/shop").json["nodes"]
    assert shown["generation"] == generation and shown["reporting"] == 2 and shown["applied"] == 1
    assert shown["stale"] == ["node-b"] and shown["silent"] == []
    by_node = {n["node"]: n for n in shown["nodes"]}
    assert by_node["node-a"]["generation"] == generation and not by_node["node-a"]["stale"]
    assert api.get("/api/v1/vga/nodes").json["stale"] == ["node-b"]


def test_a_gateway_read_and_put_back_is_accepted_and_nodes_are_not_stored(api):
    doc = gateway(api).json
    ack(api, "node-a", 1)
    doc = api.get("/api/v1/gateways/shop").json
    assert "nodes" in doc
    r = api.put("/api/v1/gateways/shop", doc)
    assert r.status_code in (200, 202), r.body
    assert "nodes" not in r.json


def test_an_older_report_never_replaces_a_newer_one(api):
    gateway(api)
    now = time.time()
    assert ack(api, "n1", 1, sent=now).json["kept"] is True
    assert ack(api, "n1", 0, sent=now - 5).json["kept"] is False
    assert api.get("/api/v1/vga/nodes").json["nodes"][0]["generation"] == 1


def test_a_node_that_stops_reporting_is_silent(api, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_NODE_SILENT_AFTER", "1")
    settings.cache_clear()
    try:
        gateway(api)
        ack(api, "quiet", 1)
        deadline = time.monotonic() + 10
        while api.get("/api/v1/vga/nodes").json["silent"] != ["quiet"]:
            assert time.monotonic() < deadline, "the node never became silent"
            time.sleep(0.3)
        health = api.get("/api/v1/health/gateways/shop").json
        assert health["value"] == 0 and "quiet" in health["reason"]
    finally:
        settings.cache_clear()


def test_health_is_0_when_no_node_reports(api):
    gateway(api)
    health = api.get("/api/v1/health/gateways/shop").json
    assert health["value"] == 0 and "no gateway node" in health["reason"]
    ack(api, "n1", 1)
    assert api.get("/api/v1/health/gateways/shop").json == {"value": 1, "window": 60}


def test_nodes_are_per_namespace(api):
    ack(api, "n1", 0, namespace_prefix="/team-b")
    assert [n["node"] for n in api.get("/team-b/api/v1/vga/nodes").json["nodes"]] == ["n1"]
    assert api.get("/api/v1/vga/nodes").json["nodes"] == []


@pytest.mark.parametrize("body, field", [
    ({"status": "applied", "sent": 1, "generation": -1}, "generation"),
    ({"status": "fine", "sent": 1}, "status"),
    ({"status": "applied"}, "sent"),
    ({"status": "applied", "sent": 1, "node": "other"}, "node"),
    ({"status": "applied", "sent": 1, "checksum": "md5:x"}, "checksum"),
    ([1, 2], "body"),
])
def test_a_malformed_acknowledgement_is_a_400_naming_the_field(api, body, field):
    r = api.put("/api/v1/vga/nodes/n1", body, token=api.token_of("agent"))
    assert r.status_code == 400, r.body
    assert r.json["errors"][0]["path"] == field


def test_a_bad_node_name_is_a_400(api):
    r = api.put("/api/v1/vga/nodes/-x", {"status": "applied", "sent": 1}, token=api.token_of("agent"))
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "node"


def test_the_openapi_document_has_the_nodes_paths(api):
    paths = api.get("/api/v1/openapi.json").json["paths"]
    assert "put" in paths["/api/v1/vga/nodes/{node}"] and "get" in paths["/api/v1/vga/nodes"]
