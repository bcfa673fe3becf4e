"""From the attacker's side: someone who can write to etcd (or who holds the signing key) tries to
make every gateway node run a command. Real etcd, a real agent with its HAProxy, real traffic.

The attack text is a valid HAProxy configuration (`haproxy -c` passes it) whose `program` section
HAProxy's master would start: only the agent's checks stand in the way. Each attempt must be
refused with the reason in the node's acknowledgement, start no process, and leave HAProxy
serving the previous configuration (same master, no reload, same backend answering)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.applier import Applier
from agent.haproxy import HAProxy
from agent.metrics import AgentMetrics
from chalicelib.contract import envelope
from tests.agent.helpers import SIGNING_KEY, free_port, get, haproxy_config, sample, wait_for
from tests.gateways.helpers import haproxy_check

pytestmark = pytest.mark.slow


def attack_config(port: int, backend_port: int, marker: Path) -> str:
    """The previous configuration's listener, and a program HAProxy would run as the node's user."""
    return haproxy_config(port, [("a", backend_port, 100)]).replace(
        "global\n", "global\n    master-worker\n    setenv PWNED yes\n", 1) + f"program evil\n    command /usr/bin/touch {marker}\n"


def processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def rejection(api, node: str, generation: int, stage: str) -> dict:
    """The node's latest report refusing `generation` at `stage`."""
    def find():
        for put in reversed(api.puts):
            body = put["body"]
            if (body["node"], body["status"], body.get("rejected_generation"), body.get("stage")) == (
                    node, "rejected", generation, stage):
                return body
        return None

    return wait_for(find, 15, what=f"the refusal of generation {generation} at {stage}")


def test_configurations_written_straight_into_etcd_are_refused_and_run_nothing(
        start_agent, live_etcd, backends, fake_api, namespace, tmp_path):
    a, b = backends
    port = free_port()
    agent = start_agent(namespace=namespace, api_url=fake_api.url, node_id="n1", heartbeat_interval=30.0)
    marker = tmp_path / "pwned"
    evil = attack_config(port, b.port, marker)
    ok, message = haproxy_check(evil)
    assert ok, message  # HAProxy itself would run it

    live_etcd.publish(namespace, 1, evil, signature="")  # a namespace never published: no signature at all
    refused = rejection(fake_api, "n1", 1, "signature")
    assert "unsigned" in refused["message"] and refused["generation"] is None, refused
    good = haproxy_config(port, [("a", a.port, 100)])
    live_etcd.publish(namespace, 1, good)
    agent.wait_reloads(1)
    assert get(port) == "A"
    master, reloads = agent.agent.haproxy.pid, sample(agent.agent.metrics, "vamp_agent_reloads_total")
    good_signature = envelope.sign(SIGNING_KEY, namespace, "2.6", 1, good.encode())

    attempts = [  # (generation, how it is written, the reason expected)
        (2, {"signature": ""}, "bad signature"),  # generation 1's signature stays next to it
        (3, {"key": "not-the-key-" + "x" * 40}, "signed with a key this node does not hold"),
        (4, {"signed_as": (namespace + "-other", 4)}, "bad signature"),
        (5, {"signature": "v1:hmac-sha256:" + envelope.key_id(SIGNING_KEY) + ":" + "0" * 64}, "bad signature"),
        (6, {"signature": good_signature}, "bad signature"),  # a real signature, of another text and generation
    ]
    for generation, how, reason in attempts:
        live_etcd.publish(namespace, generation, evil, **how)
        refused = rejection(fake_api, "n1", generation, "signature")
        assert reason in refused["message"], refused
        assert refused["generation"] == 1 and refused["rejected_gateways"] == []

    # Replays: the text of generation 1, with its real signature, written back after generation 10.
    moved = haproxy_config(port, [("b", b.port, 100)])
    live_etcd.publish(namespace, 10, moved)
    agent.wait_reloads(reloads + 1)
    assert get(port) == "B"
    live_etcd.publish(namespace, 1, good, signature=good_signature)
    refused = rejection(fake_api, "n1", 1, "generation")
    assert "older than generation 10" in refused["message"], refused
    live_etcd.publish(namespace, 11, good, signature=good_signature)  # ... or moved to a newer generation
    assert "bad signature" in rejection(fake_api, "n1", 11, "signature")["message"]
    live_etcd.publish(namespace, 10, good)  # signed, but another text for a generation received
    assert "another text" in rejection(fake_api, "n1", 10, "generation")["message"]

    # Nothing ran, nothing reloaded, the previous configuration still serves.
    assert not marker.exists() and processes_naming(str(marker)) == []
    assert agent.agent.haproxy.pid == master
    assert sample(agent.agent.metrics, "vamp_agent_reloads_total") == reloads + 1
    assert get(port) == "B"
    assert sample(agent.agent.metrics, "vamp_agent_rejected_configs_total") >= 8
    status, health = agent.healthz()
    assert status == 200 and health["config_generation"] == 10 and health["rejected_stage"] == "generation"
    assert b"program" not in (agent.agent.settings.work_dir / "haproxy.cfg").read_bytes()


def test_a_correctly_signed_configuration_with_a_denied_directive_is_refused_naming_it(
        start_agent, live_etcd, backends, fake_api, namespace, tmp_path):
    a, b = backends
    port = free_port()
    agent = start_agent(namespace=namespace, api_url=fake_api.url, node_id="n2", heartbeat_interval=30.0)
    live_etcd.publish(namespace, 1, haproxy_config(port, [("a", a.port, 100)]))
    agent.wait_reloads(1)
    marker = tmp_path / "pwned"
    live_etcd.publish(namespace, 2, attack_config(port, b.port, marker))  # the tests' key: the real one
    refused = rejection(fake_api, "n2", 2, "allowlist")
    assert "`setenv` changes HAProxy's environment" in refused["message"]
    assert "`program` runs a command" in refused["message"] and "`command`" in refused["message"]

    # A denied directive inside a gateway's backend: the refusal names that gateway.
    inside = haproxy_config(port, [("b", b.port, 100)]) + "    errorfile 503 /etc/shadow\n"
    live_etcd.publish(namespace, 3, inside)
    refused = rejection(fake_api, "n2", 3, "allowlist")
    assert "`errorfile` reads a file" in refused["message"]
    assert refused["rejected_gateways"] == ["shop/9050"]

    assert not marker.exists() and processes_naming(str(marker)) == []
    assert get(port) == "A" and sample(agent.agent.metrics, "vamp_agent_reloads_total") == 1


def test_haproxy_c_rejections_name_the_gateway_and_keep_serving(start_agent, live_etcd, backends, fake_api,
                                                                 namespace):
    """What passes the allowlist but not HAProxy (finding 10: `balance uri depth`)."""
    a, _ = backends
    port = free_port()
    agent = start_agent(namespace=namespace, api_url=fake_api.url, node_id="n3", heartbeat_interval=30.0)
    live_etcd.publish(namespace, 1, haproxy_config(port, [("a", a.port, 100)]))
    agent.wait_reloads(1)
    live_etcd.publish(namespace, 2, haproxy_config(port, [("a", a.port, 100)], balance="uri depth"))
    refused = rejection(fake_api, "n3", 2, "haproxy -c")
    assert "'depth' expects a positive integer" in refused["message"]
    assert refused["rejected_gateways"] == ["shop/9050"] and refused["generation"] == 1
    assert get(port) == "A"


def test_the_replay_floor_survives_a_restart(tmp_path):
    """A node restarted with etcd holding an old, genuinely signed text does not go back to it."""
    namespace, keys = "floor", (SIGNING_KEY,)

    def applier() -> Applier:
        haproxy = HAProxy("haproxy", tmp_path, tmp_path / "log.sock")  # never started: no reload succeeds
        return Applier(haproxy, AgentMetrics(), signing_keys=keys, namespace=namespace, version="2.6")

    text = haproxy_config(free_port(), [("a", 1, 100)]).encode()
    first = applier()
    sign = lambda g, t=text: envelope.sign(SIGNING_KEY, namespace, "2.6", g, t).encode()  # noqa: E731
    assert first.apply(text, 5, 1, 0.0, sign(5)) == "reload-failed"  # verified and checked: the floor is 5
    again = applier()
    assert again.floor == 5
    older = haproxy_config(free_port(), [("b", 2, 100)]).encode()
    assert again.apply(older, 4, 2, 0.0, sign(4, older)) == "rejected"
    assert again.state.rejected_stage == "generation" and "older than generation 5" in again.state.last_error
    assert os.path.exists(tmp_path / "applied.json")


def test_a_reload_haproxy_refuses_is_reported_with_its_words_and_the_gateway(start_agent, live_etcd, backends,
                                                                            fake_api, namespace):
    """`haproxy -c` passes a port something else holds; the reload does not (finding 10)."""
    import socket

    a, _ = backends
    port = free_port()
    agent = start_agent(namespace=namespace, api_url=fake_api.url, node_id="n4", heartbeat_interval=30.0)
    live_etcd.publish(namespace, 1, haproxy_config(port, [("a", a.port, 100)]))
    agent.wait_reloads(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        other = haproxy_config(port, [("a", a.port, 100)]).replace(
            f"    bind 127.0.0.1:{port}\n", f"    bind 127.0.0.1:{port}\n    bind 127.0.0.1:{taken.getsockname()[1]}\n")
        live_etcd.publish(namespace, 2, other)
        refused = rejection(fake_api, "n4", 2, "reload")
    assert "cannot bind socket" in refused["message"] and refused["rejected_gateways"] == ["shop/9050"], refused
    assert get(port) == "A" and refused["generation"] == 1
