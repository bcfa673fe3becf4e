"""The faults of issue 9, replayed on a whole local stack (moto with Step Functions, the API over
HTTP, real etcd, the gateway agent as a process with a real HAProxy), with the test's own traffic
through HAProxy to two backends: what a release decides must be true to what HAProxy did.

(a) etcd stopped while a release runs: the next weight cannot be published, so it is never
    live; its checks fail ("weight 40% not applied ...") and the release rolls back once etcd
    is back. HAProxy never serves more than the last live weight: no 10% -> 100% jump.
(b) the agent killed while a release runs: health says silent, no check passes, and the
    rollback is "done" only once a restarted agent applied it (and HAProxy sends the canary
    nothing).
"""
from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest
import requests

from local.backends import RecordedTraffic
from tests.agent.helpers import Backend, free_port
from tests.gateways.helpers import request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    from local.demo_release import isolated_stack

    # One stack for the module: Chalice's local server can be created once per process.
    # The agent heartbeats every 2 s (local/agent.py): silent after 4 s without one.
    with isolated_stack(tmp_path_factory.mktemp("faults"), window=1.0, VAMP_NODE_SILENT_AFTER="4") as running:
        yield running


@pytest.fixture()
def stack(local_stack):
    """The module's stack with etcd and the agent up, whatever an earlier test left."""
    if not local_stack.etcd.healthy():
        local_stack.etcd.start()
    if local_stack.agent.proc.poll() is not None:
        local_stack.agent.start()
    return local_stack


@pytest.fixture()
def two_backends():
    a, b = Backend("A"), Backend("B")
    yield a, b
    a.stop()
    b.stop()


class Client:
    def __init__(self, stack):
        self.base, self.session = stack.api_url, requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.token}"

    def get(self, path):
        r = self.session.get(self.base + path, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def send(self, method, path, body=None):
        return self.session.request(method, self.base + path, json=body, timeout=30)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def wait(what, predicate, timeout=90.0, every=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def _gateway(api, name, port, a, b):
    body = {"name": name, "port": f"{port}/http",
            "routes": {f"[127.0.0.1:{a.port}]": {"weight": "100%"}, f"[127.0.0.1:{b.port}]": {"weight": "0%"}}}
    r = api.send("PUT", f"/api/v1/gateways/{name}", body)
    assert r.status_code == 202, r.text
    wait("the node to run the gateway", lambda: (lambda n: n["applied"] == n["reporting"] == 1)(api.get("/api/v1/vga/nodes")))
    wait("HAProxy serving the gateway", lambda: _answers(port))
    return f"[127.0.0.1:{a.port}]", f"[127.0.0.1:{b.port}]"


def _answers(port):
    try:
        return request(port, timeout=1)[0] == 200
    except OSError:
        return False


def _start(api, name, gateway, stable, canary, **policy):
    body = {"name": name, "gateway": gateway, "stable": stable, "canary": canary, "policy": {
        "interval": "2s", "minimum_requests": 5, "metrics": {"success_rate": {"minimum": "90%"}}, **policy}}
    r = api.send("POST", "/api/v1/releases", body)
    assert r.status_code == 202, r.text


def _judged_while_live(traffic, status):
    """Every passed check of a step judged HAProxy at that step's weight: the canary's share of
    the test's own requests in the check's window is the weight (binomial, 5 sd)."""
    for c in status["checks"]:
        if c["step"] == 0 or c["verdict"] != "pass":
            continue
        ok, share, served = traffic.saw_weight(c["weight"], _epoch(c["since"]), _epoch(c["until"]))
        assert ok, (c, share, served)


def test_etcd_stopped_mid_release_holds_the_live_weight_and_rolls_back_once_back(stack, two_backends):
    api = Client(stack)
    port = free_port()
    stable, canary = _gateway(api, "shop-etcd", port, *two_backends)
    release = "/api/v1/releases/r-etcd"
    with RecordedTraffic(port) as traffic:
        _start(api, "r-etcd", "shop-etcd", stable, canary, steps=["10%", "40%", "80%"], failures=2, apply_timeout="3s")
        wait("10% live", lambda: (lambda s: s["step"] == 1 and s["live_since"])(api.get(release)))
        stack.etcd.stop()  # before the 10% check: the 40% that follows it cannot be published
        stopped = time.time()
        status = wait("the rollback waiting for the node", lambda: (lambda s: s if s["phase_detail"].startswith(
            "rolling back (") or s["phase"] in ("promoted", "rolled_back") else None)(api.get(release)))
        assert status["phase"] == "rolling_back", status
        after_10 = [c for c in status["checks"] if c["weight"] > 10]
        assert after_10 and all(c["verdict"] == "fail" and "not applied on 1 of 1 nodes" in c["reason"]
                                for c in after_10), status["checks"]
        assert max(c["weight"] for c in status["checks"]) == 40 and status["publish_error"], status
        share, served = traffic.canary_share(stopped)
        assert served > 50 and share < 20, (share, served)  # HAProxy stayed at 10% the whole time
        time.sleep(3)
        assert api.get(release)["phase"] == "rolling_back"  # not done while etcd is away

        stack.etcd.start()
        status = wait("the rollback applied", lambda: (lambda s: s if s["phase"] == "rolled_back" else None)(
            api.get(release)))
        done = _epoch(status["finished"])
        time.sleep(2)
        share, served = traffic.canary_share(done + 0.5)
        assert served > 50 and share == 0, (share, served)
        # Never more than the last live weight: not one request window saw 40% or more.
        assert traffic.canary_share(stopped, done)[0] < 20
        _judged_while_live(traffic, status)
    events = api.get("/api/v1/events?tag=releases:r-etcd&tag=release:publish-failed&per_page=10")
    assert events and "error" in events[0]["value"]


def test_agent_killed_mid_release_is_silent_and_the_rollback_is_done_only_once_applied(stack, two_backends):
    api = Client(stack)
    port = free_port()
    stable, canary = _gateway(api, "shop-agent", port, *two_backends)
    release = "/api/v1/releases/r-agent"
    with RecordedTraffic(port) as traffic:
        _start(api, "r-agent", "shop-agent", stable, canary, steps=["20%", "60%"], failures=1, inconclusive_limit=1,
               apply_timeout="3s")
        wait("20% live", lambda: (lambda s: s["step"] == 1 and s["live_since"])(api.get(release)))
        stack.agent.stop_supervising()  # it stays dead (the stack would restart it: tests/local)
        stack.agent.proc.send_signal(signal.SIGKILL)  # HAProxy (its own session) keeps serving
        killed = time.time()
        stack.agent.proc.wait(10)
        health = wait("health to see the silent node", lambda: (lambda h: h if h["value"] == 0 else None)(
            api.get("/api/v1/health/gateways/shop-agent")))
        assert "silent" in health["reason"], health
        assert api.get("/api/v1/gateways/shop-agent")["nodes"]["silent"] == ["local-agent"]
        status = wait("the rollback waiting for a node", lambda: (lambda s: s if s["phase_detail"].startswith(
            "rolling back (") or s["phase"] in ("promoted", "rolled_back") else None)(api.get(release)))
        assert status["phase"] == "rolling_back", status
        assert not [c for c in status["checks"] if c["verdict"] == "pass" and _epoch(c["since"]) > killed], status
        time.sleep(3)
        assert api.get(release)["phase"] == "rolling_back"
        share, served = traffic.canary_share(killed)
        assert served > 50 and share > 5, (share, served)  # HAProxy still gives the canary its 20%: true

        stack.agent.start()
        status = wait("the rollback applied", lambda: (lambda s: s if s["phase"] == "rolled_back" else None)(
            api.get(release)))
        done = _epoch(status["finished"])
        time.sleep(2)
        share, served = traffic.canary_share(done + 0.5)
        assert served > 50 and share == 0, (share, served)
        assert api.get("/api/v1/vga/nodes")["silent"] == []
        _judged_while_live(traffic, status)
