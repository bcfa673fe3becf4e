"""A configuration a node refused shows on the gateway it names (GET /gateways/<name>, `nodes.rejected`),
with HAProxy's (or the agent's) words and what refused it; a refusal naming no gateway (a bad
signature) concerns them all (docs/decisions/0023)."""
from __future__ import annotations

import time

import pytest

from chalicelib.contract.envelope import checksum
from tests.agent.helpers import FakeApi, free_port, wait_for
from tests.gateways.helpers import split_gateway


@pytest.fixture()
def fake_api():
    api = FakeApi()
    yield api
    api.stop()


def ack(api, node, **extra):
    body = {"node": node, "generation": 1, "checksum": "sha256:" + "0" * 64, "status": "rejected",
            "sent": time.time(), "interval": 1.0, "rejected_generation": 2, **extra}
    return api.put(f"/api/v1/vga/nodes/{node}", body, token=api.token_of("agent"))


def gateway(api, name):
    r = api.post("/api/v1/gateways", {"name": name, "port": f"{free_port()}/http", "routes": {"a": {"weight": "100%"}}})
    assert r.status_code in (201, 202), r.body


def test_a_refusal_shows_on_the_gateway_it_names_and_not_on_the_others(api):
    gateway(api, "shop")
    gateway(api, "cart")
    message = "parsing [candidate.cfg:31] : balance uri : 'depth' expects a positive integer (got '')."
    assert ack(api, "node-a", stage="haproxy -c", message=message, rejected_gateways=["shop"]).status_code == 200
    shop = api.get("/api/v1/gateways/shop").json["nodes"]
    assert shop["rejected"] == [{"node": "node-a", "generation": 2, "stage": "haproxy -c", "message": message}]
    assert shop["nodes"][0]["rejected_gateways"] == ["shop"]
    assert api.get("/api/v1/gateways/cart").json["nodes"]["rejected"] == []
    assert "rejected" not in api.get("/api/v1/vga/nodes").json  # the namespace view lists nodes, not per gateway

    assert ack(api, "node-b", stage="signature", message="refused: unsigned", rejected_gateways=[]).status_code == 200
    cart = api.get("/api/v1/gateways/cart").json["nodes"]["rejected"]
    assert [(r["node"], r["stage"]) for r in cart] == [("node-b", "signature")]


def test_a_malformed_refusal_is_a_400_naming_the_field(api):
    gateway(api, "shop")
    for field, value in (("stage", "because"), ("rejected_gateways", "shop"), ("rejected_gateways", [{"x": 1}])):
        r = ack(api, "node-c", **{"stage": "allowlist", "rejected_gateways": ["shop"], field: value})
        assert r.status_code == 400, r.body
        assert r.json["errors"][0]["path"] == field
    assert api.get("/api/v1/vga/nodes").json["nodes"] == []  # nothing kept


def test_what_haproxy_refused_on_a_node_reaches_the_gateway_through_the_api(gw_api, namespace, start_agent,
                                                                           fake_api, live_etcd):
    """The whole way: the API publishes, the agent serves it; a signed variant HAProxy refuses
    (as a renderer bug would produce) is refused on the node naming the gateway, and the node's
    own report, PUT to the API, shows on that gateway."""
    agent = start_agent(namespace=namespace, api_url=fake_api.url, node_id="node-1", heartbeat_interval=30.0)
    r = gw_api.put(f"/{namespace}/api/v1/gateways/shop", split_gateway("shop", free_port(), 1, 2, (50, 50)))
    assert r.status_code == 202, r.body
    published = gw_api.get(f"/{namespace}/api/v1/vga/haproxy/2.6/configuration").json
    wait_for(lambda: agent.healthz()[1]["config_checksum"] == checksum(published["configuration"]), 20,
             what="the agent serving it")
    broken = published["configuration"].replace("balance roundrobin", "balance uri depth", 1)
    assert broken != published["configuration"]
    live_etcd.publish(namespace, published["generation"] + 1, broken)

    def refused():
        return next((p["body"] for p in reversed(fake_api.puts) if p["body"]["status"] == "rejected"), None)

    report = wait_for(refused, 15, what="the node's refusal")
    assert report["stage"] == "haproxy -c" and report["rejected_gateways"] == ["shop"]
    r = gw_api.put(f"/{namespace}/api/v1/vga/nodes/node-1", report, token=gw_api.token_of("agent", [namespace]))
    assert r.status_code == 200, r.body
    shown = gw_api.get(f"/{namespace}/api/v1/gateways/shop").json["nodes"]["rejected"]
    assert len(shown) == 1 and shown[0]["node"] == "node-1" and shown[0]["stage"] == "haproxy -c"
    assert "'depth' expects a positive integer" in shown[0]["message"]
