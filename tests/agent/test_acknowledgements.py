"""The agent acknowledges what it applied, with the generation etcd held with it, through real
etcd (published as the control plane publishes: both keys in one transaction) and HAProxy."""
from __future__ import annotations

import pytest

from chalicelib.contract.envelope import checksum
from chalicelib.gateways import publisher
from chalicelib.kv import etcd as kv_etcd
from tests.agent.helpers import FakeApi, free_port, haproxy_config, sample, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture()
def fake_api():
    api = FakeApi()
    yield api
    api.stop()


def _publish(etcd, namespace, generation, text):
    return publisher.publish(kv_etcd.at(etcd.endpoint), namespace, "2.6", generation, text, checksum(text))


def _acks(api, node):
    return [p["body"] for p in api.puts if p["path"] == f"/ns1/api/v1/vga/nodes/{node}" or
            p["path"].endswith(f"/api/v1/vga/nodes/{node}")]


def test_the_generation_applied_is_acknowledged_and_a_same_text_generation_costs_no_reload(
        start_agent, backends, live_etcd, fake_api, namespace):
    a, b = backends
    agent = start_agent(namespace=namespace, api_url=fake_api.url, api_token="t0k", node_id="node-1",
                        heartbeat_interval=30.0)
    wait_for(lambda: _acks(fake_api, "node-1"), 10, what="a first heartbeat")
    assert _acks(fake_api, "node-1")[0]["status"] == "pending"
    assert fake_api.puts[0]["path"] == f"/{namespace}/api/v1/vga/nodes/node-1"
    assert fake_api.puts[0]["headers"]["Authorization"] == "Bearer t0k"

    text = haproxy_config(free_port(), [("a", a.port, 100), ("b", b.port, 0)])
    assert _publish(live_etcd, namespace, 7, text).status == "published"
    # Sent right after the apply, not at the next heartbeat (30 s away).
    wait_for(lambda: any(x.get("generation") == 7 for x in _acks(fake_api, "node-1")), 10, what="ack of 7")
    got = [x for x in _acks(fake_api, "node-1") if x.get("generation") == 7][0]
    assert got["status"] == "applied" and got["checksum"] == checksum(text) and got["node"] == "node-1"
    reloads = sample(agent.agent.metrics, "vamp_agent_reloads_total")

    assert _publish(live_etcd, namespace, 9, text).status == "unchanged"  # the generation key alone
    wait_for(lambda: any(x.get("generation") == 9 for x in _acks(fake_api, "node-1")), 10, what="ack of 9")
    assert sample(agent.agent.metrics, "vamp_agent_reloads_total") == reloads
    assert agent.healthz()[1]["config_generation"] == 9


def test_a_rejected_configuration_is_acknowledged_as_rejected(start_agent, backends, live_etcd, fake_api, namespace):
    a, b = backends
    start_agent(namespace=namespace, api_url=fake_api.url, node_id="node-2", heartbeat_interval=30.0)
    good = haproxy_config(free_port(), [("a", a.port, 100)])
    _publish(live_etcd, namespace, 3, good)
    wait_for(lambda: any(x.get("generation") == 3 for x in _acks(fake_api, "node-2")), 10, what="ack of 3")
    _publish(live_etcd, namespace, 4, good + "\nfrontend broken\n    bind :notaport\n")
    wait_for(lambda: any(x["status"] == "rejected" for x in _acks(fake_api, "node-2")), 10, what="a rejection")
    rejected = [x for x in _acks(fake_api, "node-2") if x["status"] == "rejected"][-1]
    assert rejected["generation"] == 3 and rejected["rejected_generation"] == 4 and rejected["message"]
