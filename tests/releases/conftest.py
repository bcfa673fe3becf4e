"""Releases against the real local parts: moto's server runs infra/release.asl.json, its Lambda
tasks are delivered in-process to app.py, metric events are posted through the API as the
gateway agents would, and a fake agent acknowledges what the store holds (no etcd here)."""
from __future__ import annotations

import threading
import time

import pytest

from chalicelib.contract.acknowledgement import Acknowledgement
from chalicelib.gateways import snapshot
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.node_store import DynamoDBNodeStore

GATEWAY = "shop"
STABLE, CANARY = "shop/v1/web", "shop/v2/web"


@pytest.fixture()
def sfn(aws):
    from local import stepfunctions

    arn = stepfunctions.setup(aws)
    stepfunctions.interceptors.clear()
    yield arn
    stepfunctions.interceptors.clear()


class FakeAgent:
    """A gateway node that acknowledges, every 50 ms, the namespace generation the store holds
    (as an agent applying whatever is published would); `paused` it goes on heartbeating the
    generation it had (a node etcd cannot reach), `stopped` it says nothing (a dead agent)."""

    def __init__(self, node="node-1", namespace="default"):
        self.node, self.namespace = node, namespace
        self.paused = self.stopped = False
        self.generation = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        nodes, store = DynamoDBNodeStore(3600), DynamoDBArtifactStore()
        while not self._halt.wait(0.05):
            if self.stopped:
                continue
            if not self.paused:
                self.generation = snapshot.generation(store, self.namespace)
            nodes.report(Acknowledgement(node=self.node, namespace=self.namespace, generation=self.generation,
                                         checksum=None, status="applied", sent=time.time(), interval=0.5), time.time())

    def halt(self):
        self._halt.set()
        self._thread.join(timeout=5)


@pytest.fixture(autouse=True)
def fake_agent(aws):
    agent = FakeAgent()
    yield agent
    agent.halt()


class Traffic:
    """Stands in for the gateway agents' metrics: one window per route per `tick`, 100 requests
    split by the gateway's weights (a route's `requests` set: that many)."""

    def __init__(self, api, gateway=GATEWAY):
        self.api, self.gateway = api, gateway
        self.profile = {STABLE: dict(requests=None, errors=0, latency=20), CANARY: dict(requests=None, errors=0, latency=20)}
        self.windows = 0

    def set(self, route, **figures):
        self.profile[route].update(figures)

    def tick(self):
        events = []
        split = weights(self.api, self.gateway)
        pool = sum(split.get(r, 0) for r in self.profile) or 1
        for route, p in self.profile.items():
            p = {**p, "requests": p["requests"] if p["requests"] is not None else round(100 * split.get(route, 0) / pool)}
            if p["requests"] <= 0:
                continue
            tags = [f"gateways:{self.gateway}", f"routes:{route}"]
            lat = p["latency"]
            hist = [[lat - 2, p["requests"] // 4], [lat, p["requests"] // 2], [lat + 3, p["requests"] - 3 * (p["requests"] // 4)]]
            for metric, value in (("requests", p["requests"]), ("errors", p["errors"]), ("p50", lat), ("p95", lat + 2),
                                  ("p99", lat + 3), ("histogram", hist)):
                events.append({"tags": tags + [f"metrics:{metric}"], "type": "metrics", "value": value})
        r = self.api.post("/api/v1/events", events, token=self.api.token_of("agent", ["default"]))  # as agents do
        assert r.status_code == 201, r.body
        self.windows += 1


def make_gateway(api, stable_weight=100, name=GATEWAY):
    r = api.post("/api/v1/gateways", {"name": name, "port": "9050/http", "routes": {
        STABLE: {"weight": f"{stable_weight}%"}, CANARY: {"weight": f"{100 - stable_weight}%"}}})
    assert r.status_code in (201, 202), r.body


def weights(api, name=GATEWAY) -> dict:
    r = api.get(f"/api/v1/gateways/{name}")
    return {k: int(v.get("weight", "0%").rstrip("%")) for k, v in r.json["routes"].items()}


def policy(**over) -> dict:
    base = {"steps": ["20%", "50%"], "interval": "1s", "failures": 2, "minimum_requests": 10,
            "metrics": {"success_rate": {"minimum": "99%"}, "latency": {"percentile": 99, "maximum": "100ms"}}}
    base.update(over)
    return base


def release(name="r1", **policy_over) -> dict:
    return {"name": name, "gateway": GATEWAY, "stable": STABLE, "canary": CANARY, "policy": policy(**policy_over)}


def run_until(api, name, traffic, done, timeout=30.0, tick=0.2):
    """Post a metric window every `tick` until `done(status)`; returns the last status."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if traffic is not None:
            traffic.tick()
        status = api.get(f"/api/v1/releases/{name}").json
        if done(status):
            return status
        time.sleep(tick)
    phase = status and status.get("phase")
    raise AssertionError(f"timed out after {timeout}s in phase {phase}; last status: {status}")


def finished(status) -> bool:
    return status["phase"] in ("promoted", "rolled_back", "failed")


@pytest.fixture()
def traffic(api):
    return Traffic(api)
