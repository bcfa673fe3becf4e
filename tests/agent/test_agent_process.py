"""The agent end to end: HAProxy's logs to OpenSearch and the API; `python -m agent` and SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from agent.haproxy import master_cli, parse_show_proc
from tests.agent.helpers import GATEWAY, ROUTE, free_port, get, haproxy_config, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_haproxy_logs_reach_opensearch_and_metric_events_post_in_one_batch(start_agent, backends, fake_opensearch,
                                                                             fake_api):
    a, b = backends
    agent = start_agent(opensearch_url=fake_opensearch.url, api_url=fake_api.url, api_token="tok",
                        namespace="default", ship_interval=0.2, aggregate_interval=1.0)
    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 80), ("b", b.port, 20)]))
    agent.wait_reloads(1)
    for _ in range(200):
        get(port)
    wait_for(lambda: len(fake_opensearch.documents("vamp-logs-default-*")) >= 200, 15, what="200 docs")
    docs = fake_opensearch.documents("vamp-logs-default-*")
    assert {d["gateway"] for d in docs} == {GATEWAY} and {d["route"] for d in docs} == {ROUTE}
    assert {d["server"] for d in docs} == {"a", "b"} and all(d["status"] == 200 for d in docs)
    assert all(d["@timestamp"].endswith("Z") and d["request"] == "GET / HTTP/1.1" for d in docs)

    def window_with_200() -> dict | None:
        for post in fake_api.posts:
            for e in post["body"]:
                if e["tags"] == [f"gateways:{GATEWAY}", "metrics:requests"] and e["value"] == 200:
                    return post
        return None

    post = wait_for(window_with_200, 15, what="a window holding the 200 requests")
    assert post["path"] == "/api/v1/events"  # default namespace: no prefix
    assert post["headers"]["Authorization"] == "Bearer tok"
    events = post["body"]
    assert isinstance(events, list) and len(events) == 15  # 7 metrics x (gateway + 1 route) + the route's histogram
    tags = {tuple(e["tags"]) for e in events}
    for metric in ("requests", "errors", "rate", "p50", "p95", "p99", "responseTime"):
        assert (f"gateways:{GATEWAY}", f"metrics:{metric}") in tags
        assert (f"gateways:{GATEWAY}", f"routes:{ROUTE}", f"metrics:{metric}") in tags
    assert all(e["type"] == "metrics" and isinstance(e["value"], (int, float)) for e in events
               if "metrics:histogram" not in e["tags"])
    histogram = next(e["value"] for e in events if "metrics:histogram" in e["tags"])
    assert sum(n for _, n in histogram) == 200
    assert agent.metric("vamp_agent_log_lines_shipped_total") >= 200


def test_python_m_agent_serves_health_and_stops_haproxy_on_sigterm(live_etcd, backends, tmp_path):
    a, b = backends
    listen = f"127.0.0.1:{free_port()}"
    namespace = f"p{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAMP_AGENT_ETCD_ENDPOINT": live_etcd.endpoint}
    proc = subprocess.Popen([sys.executable, "-m", "agent", "--namespace", namespace, "--work-dir", str(tmp_path),
                             "--listen", listen], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        def health() -> tuple[int, dict] | None:
            try:
                r = requests.get(f"http://{listen}/healthz", timeout=1)
                return r.status_code, r.json()
            except requests.RequestException:
                return None

        assert wait_for(health, 20, what="agent up")[0] == 503
        port = free_port()
        live_etcd.publish(namespace, 1, haproxy_config(port, [("a", a.port, 100), ("b", b.port, 0)]))
        wait_for(lambda: (health() or (0,))[0] == 200, 20, what="config applied")
        assert get(port) == "A"
        master = parse_show_proc(master_cli(tmp_path / "master.sock", "show proc")).master_pid
        assert master > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(master, 0)
        assert b"agent stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()  # a killed agent leaves HAProxy running on purpose (traffic goes on): stop it
            proc.wait(10)
            state = parse_show_proc(master_cli(tmp_path / "master.sock", "show proc")) \
                if (tmp_path / "master.sock").exists() else None
            if state and state.master_pid:
                os.kill(state.master_pid, signal.SIGTERM)
