"""Gateways on the node's own address (VAMP_GATEWAY_BIND=node, docs/decisions/0037): the control
plane renders ONE text for every node, `bind "${VAMP_NODE_ADDRESS}:<port>"` beside the loopback
bind, and signs it; the agent never rewrites it but gives HAProxy the node's address (the pod's
status.hostIP on Kubernetes) in its environment. A real agent and HAProxy on loopback aliases
(127.0.0.2 stands for the node's address: Linux routes all of 127/8 to lo)."""
from __future__ import annotations

import http.client
import socket

import pytest

from agent import allowlist
from agent.settings import AgentSettings, SettingsError
from chalicelib.contract.log_format import node_bind_line
from chalicelib.gateways import haproxy, spec
from tests.agent.helpers import free_port, wait_for

NODE = "127.0.0.2"


def get_from(host: str, port: int) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, (response.status, body[:200])
        return body
    finally:
        conn.close()


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return True
    return False


def rendered(web: int, front: int, backend_port: int, vh: int = 0) -> haproxy.Rendered:
    gateways = [spec.GatewaySpec("web", web, "http", routes=(spec.RouteSpec(f"[127.0.0.1:{backend_port}]"),)),
                spec.GatewaySpec("front", front, "http", routes=(spec.RouteSpec("web", weight=100),))]
    return haproxy.render("default", gateways, haproxy.Options(bind="node", virtual_hosts_port=vh))


def test_the_renderer_binds_loopback_and_the_nodes_address_and_the_allowlist_admits_exactly_that():
    text = rendered(40001, 40002, 8080, vh=8081).text
    for port in (40001, 40002, 8081):
        assert f"    bind 127.0.0.1:{port}\n    {node_bind_line(port)}\n" in text
    assert "server gw-web 127.0.0.1:40001" in text  # chaining stays on loopback
    assert allowlist.check(text) == []
    for forged in ('bind "${HOME}:40001"', 'bind "${VAMP_NODE_ADDRESS}:40001" ssl crt /etc/passwd',
                   'bind "${VAMP_NODE_ADDRESS}"', "bind ${VAMP_NODE_ADDRESS}:40001"):
        refusals = allowlist.check(text.replace(node_bind_line(40001), forged, 1))
        assert refusals and refusals[0].keyword == "bind", forged
    # other binds render as before: no variable
    assert "VAMP_NODE_ADDRESS" not in haproxy.render("default", [], haproxy.Options(bind="0.0.0.0",
                                                                                  virtual_hosts_port=80)).text


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "node-1.internal", "10.0.0.1:80", ""])
def test_the_agent_refuses_anything_but_one_address_of_the_node(address, tmp_path):
    settings = AgentSettings(node_address=address, signing_key="k" * 40, work_dir=tmp_path)
    with pytest.raises(SettingsError, match="--node-address"):
        settings.check()
    AgentSettings(node_address="fd00:ec2::1", signing_key="k" * 40, work_dir=tmp_path).check()


def test_an_agent_serves_the_one_signed_text_on_its_nodes_address(start_agent, backends):
    a, _ = backends
    web, front = free_port(), free_port()
    config = rendered(web, front, a.port)
    agent = start_agent(node_address=NODE)
    agent.put(config.text)
    agent.wait_reloads(1)
    assert get_from(NODE, web) == "A" and get_from("127.0.0.1", web) == "A"
    assert get_from(NODE, front) == "A"  # the chained gateway, reached on loopback
    assert refused("127.0.0.3", web)  # the node's address and loopback, not every address
    # the text applied is the one signed: the checksum the node acknowledges is the control plane's
    wait_for(lambda: agent.healthz()[1].get("config_checksum") == config.checksum, 10, what="the checksum")
    assert agent.agent.haproxy.env()["VAMP_NODE_ADDRESS"] == NODE
