"""The agent against real etcd and real HAProxy: configs applied, traffic follows, outages survived."""
from __future__ import annotations

import pytest

from tests.agent.helpers import GATEWAY, ROUTE, Load, free_port, get, haproxy_config, sample, wait_for

pytestmark = pytest.mark.slow


def split(port: int, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(n):
        body = get(port)
        counts[body] = counts.get(body, 0) + 1
    return counts


def test_config_from_etcd_is_applied_and_traffic_follows_the_weights(start_agent, backends):
    a, b = backends
    agent = start_agent()
    status, body = agent.healthz()
    assert status == 503 and body["config_applied"] is False and body["haproxy_running"] is True

    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 80), ("b", b.port, 20)]))
    agent.wait_reloads(1)
    status, body = agent.healthz()
    assert status == 200, body
    assert body["etcd_connected"] is True and body["config_checksum"].startswith("sha256:")
    assert body["last_revision"] > 0 and body["config_revision"] == body["last_revision"]

    counts = split(port, 1000)
    # Weighted round robin: 80/20 within 3 points.
    assert abs(counts.get("A", 0) - 800) <= 30, counts
    assert counts.get("A", 0) + counts.get("B", 0) == 1000

    agent.put(haproxy_config(port, [("a", a.port, 0), ("b", b.port, 100)]))
    agent.wait_reloads(2)
    assert split(port, 1000) == {"B": 1000}
    assert agent.metric("vamp_agent_reloads_total") == 2
    assert agent.metric("vamp_agent_apply_latency_seconds_count") == 2


def test_etcd_outage_drops_no_request_and_later_changes_apply(start_agent, backends, live_etcd):
    a, b = backends
    agent = start_agent()
    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 50), ("b", b.port, 50)]))
    agent.wait_reloads(1)

    with Load(port, threads=3) as load:
        live_etcd.stop()
        wait_for(lambda: not agent.agent.watcher.state.connected, 10, what="watcher sees etcd gone")
        served = load.ok
        wait_for(lambda: load.ok >= served + 200, 15, what="traffic while etcd is down")
        assert agent.healthz()[0] == 200  # HAProxy and its config are fine; etcd is not needed
        live_etcd.start()
        wait_for(lambda: agent.agent.watcher.state.connected, 15, what="watcher reconnected")
        agent.put(haproxy_config(port, [("a", a.port, 0), ("b", b.port, 100)]))
        agent.wait_reloads(2)
        after = load.ok
        wait_for(lambda: load.ok >= after + 100, 15, what="traffic after the change")
    assert load.failures == []
    assert agent.metric("vamp_agent_etcd_reconnects_total") >= 1
    assert split(port, 50) == {"B": 50}


def test_invalid_config_is_rejected_counted_and_traffic_continues(start_agent, backends, fake_api):
    a, b = backends
    agent = start_agent(api_url=fake_api.url, api_token="s3cret")
    port = free_port()
    good = haproxy_config(port, [("a", a.port, 100), ("b", b.port, 0)])
    agent.put(good)
    agent.wait_reloads(1)
    checksum = agent.healthz()[1]["config_checksum"]

    with Load(port, threads=2) as load:
        agent.put(good.replace("balance roundrobin", "balance no-such-algorithm"))
        wait_for(lambda: sample(agent.agent.metrics, "vamp_agent_rejected_configs_total") >= 1, 15,
                 what="rejection")
        served = load.ok
        wait_for(lambda: load.ok >= served + 50, 10, what="traffic after rejection")
    assert load.failures == [] and set(load.bodies) == {"A"}
    assert agent.metric("vamp_agent_rejected_configs_total") == 1
    assert agent.metric("vamp_agent_reloads_total") == 1
    status, body = agent.healthz()
    assert status == 200 and body["config_checksum"] == checksum
    assert "balance only supports" in body["last_error"]
    assert agent.agent.settings.work_dir.joinpath("haproxy.cfg").read_text() == good

    wait_for(lambda: fake_api.posts, 5, what="rejected event")
    post = fake_api.posts[0]
    assert post["path"] == f"/{agent.agent.settings.namespace}/api/v1/events"
    assert post["headers"]["Authorization"] == "Bearer s3cret"
    (event,) = post["body"]
    assert event["tags"] == ["gateways", "agent"] and event["type"] == "rejected"
    assert "balance only supports" in event["value"]["message"]


def test_reloads_under_concurrent_load_drop_nothing(start_agent, backends):
    a, b = backends
    agent = start_agent()
    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 50), ("b", b.port, 50)]))
    agent.wait_reloads(1)
    with Load(port, threads=4) as load:
        for i in range(2, 22):  # 20 reloads, each waited for, under 4 request loops
            weight = (i * 37) % 101
            agent.put(haproxy_config(port, [("a", a.port, weight), ("b", b.port, 100 - weight)]))
            agent.wait_reloads(i)
    assert load.failures == [], load.failures[:5]
    assert load.ok > 200
    assert sample(agent.agent.metrics, "vamp_agent_reload_failures_total") == 0


def test_master_death_restarts_haproxy_on_the_last_good_config(start_agent, backends):
    import os
    import signal

    a, b = backends
    agent = start_agent()
    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 100), ("b", b.port, 0)]))
    agent.wait_reloads(1)
    old = agent.agent.haproxy.pid
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: sample(agent.agent.metrics, "vamp_agent_haproxy_restarts_total") >= 1, 15, what="restart")
    wait_for(lambda: agent.agent.haproxy.running(), 10)
    assert agent.agent.haproxy.pid != old
    wait_for(lambda: _ok(port), 10, what="traffic on the restarted master")
    assert get(port) == "A"


def _ok(port: int) -> bool:
    try:
        return get(port, timeout=1) == "A"
    except Exception:
        return False


def test_access_logs_reach_the_aggregator_with_gateway_and_route(start_agent, backends, fake_api):
    a, b = backends
    agent = start_agent(api_url=fake_api.url)
    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 80), ("b", b.port, 20)]))
    agent.wait_reloads(1)
    split(port, 100)
    wait_for(lambda: sample(agent.agent.metrics, "vamp_agent_log_lines_received_total") >= 100, 10,
             what="100 log lines")
    assert sample(agent.agent.metrics, "vamp_agent_log_lines_invalid_total") == 0
    events = agent.agent.flush_window()
    by_tags = {tuple(e["tags"]): e["value"] for e in events}
    assert by_tags[(f"gateways:{GATEWAY}", "metrics:requests")] == 100
    assert by_tags[(f"gateways:{GATEWAY}", f"routes:{ROUTE}", "metrics:requests")] == 100
    assert by_tags[(f"gateways:{GATEWAY}", "metrics:errors")] == 0
    assert len(fake_api.posts) == 1 and fake_api.posts[0]["path"] == f"/{agent.agent.settings.namespace}/api/v1/events"
