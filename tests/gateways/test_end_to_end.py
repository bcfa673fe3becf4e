"""API (chalice test client) -> etcd -> agent -> HAProxy, with real traffic to local backends."""
from __future__ import annotations

from chalicelib.contract.envelope import checksum
from tests.agent.helpers import free_port, wait_for
from tests.gateways.helpers import request, split_gateway, tally

N = 1000
# 80/20 by one rand(100) draw per request: binomial, sd = sqrt(1000 * 0.8 * 0.2) = 12.6 requests;
# +-60 is more than 4.7 sd (a false alarm about once in a million runs).
TOLERANCE = 60


def _applied(api, agent, namespace):
    """Wait until the agent serves exactly what the API published last."""
    r = api.get(f"/{namespace}/api/v1/vga/haproxy/2.6/configuration")
    assert r.status_code == 200, r.body
    digest = checksum(r.json["configuration"])
    wait_for(lambda: agent.healthz()[1]["config_checksum"] == digest, 20, what="agent serving the new configuration")
    return r.json


def test_weights_then_all_traffic_moves_then_a_header_condition(gw_api, namespace, start_agent, backends):
    a, b = backends
    agent = start_agent(namespace=namespace)
    port = free_port()
    path = f"/{namespace}/api/v1/gateways/shop"

    r = gw_api.put(path, split_gateway("shop", port, a.port, b.port, (80, 20)))
    assert r.status_code == 202, r.body
    _applied(gw_api, agent, namespace)
    counts = tally(port, N)
    assert sum(counts.values()) == N and set(counts) <= {"A", "B"}, counts
    assert abs(counts["A"] - 800) <= TOLERANCE, counts

    r = gw_api.put(path, split_gateway("shop", port, a.port, b.port, (0, 100)))
    assert r.status_code == 202
    config = _applied(gw_api, agent, namespace)
    assert config["generation"] >= 2
    assert tally(port, N) == {"B": N}

    # a condition: requests with the header go to A (strength 100%), the others by weight (B)
    body = split_gateway("shop", port, a.port, b.port, (0, 100))
    body["routes"][f"[127.0.0.1:{a.port}]"]["condition"] = "has header X-Canary"
    assert gw_api.put(path, body).status_code == 202
    _applied(gw_api, agent, namespace)
    assert tally(port, 200, {"X-Canary": "yes"}) == {"A": 200}
    assert tally(port, 200) == {"B": 200}

    events = gw_api.get(f"/{namespace}/api/v1/events?tag=gateways:shop&tag=deployed").json
    assert len(events) == 3 and all("deployed" in e["tags"] for e in events)
    assert events[0]["value"]["generation"] == config["generation"] + 1  # newest first

    # deleting undeploys: the frontend goes away
    assert gw_api.delete(path).status_code == 202
    _applied(gw_api, agent, namespace)
    wait_for(lambda: _refused(port), 10, what="the gateway's port closed")
    undeployed = gw_api.get(f"/{namespace}/api/v1/events?tag=gateways:shop&tag=undeployed").json
    assert len(undeployed) == 1


def _refused(port: int) -> bool:
    try:
        request(port, timeout=1)
        return False
    except OSError:
        return True


def test_virtual_hosts_chaining_and_the_configuration_endpoint(gw_api, namespace, start_agent, backends, publishing):
    a, b = backends
    agent = start_agent(namespace=namespace)
    front, back = free_port(), free_port()
    assert gw_api.put(f"/{namespace}/api/v1/gateways/back",
                      {"name": "back", "port": back, "routes": {f"[127.0.0.1:{b.port}]": {}}}).status_code == 202
    assert gw_api.put(f"/{namespace}/api/v1/gateways/front",
                      {"name": "front", "port": front, "virtual_hosts": ["shop.example.com"],
                       "routes": {"back": {}}}).status_code == 202
    _applied(gw_api, agent, namespace)
    assert request(front) == (200, "B")  # front -> back -> B
    vhosts = int(publishing["VAMP_VIRTUAL_HOSTS_PORT"])
    assert request(vhosts, {"Host": "shop.example.com"}) == (200, "B")
    assert request(vhosts, {"Host": "back.vamp:80"}) == (200, "B")  # automatic virtual host
    assert request(vhosts, {"Host": "other.example.com"})[0] == 503

    text = gw_api.get(f"/{namespace}/api/v1/vga/haproxy/2.6/configuration", headers={"Accept": "text/plain"})
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert b"frontend gw.front" in text.body
    assert gw_api.get(f"/{namespace}/api/v1/vga/haproxy/9.9/configuration").status_code == 404
