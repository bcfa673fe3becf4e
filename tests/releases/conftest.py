"""Releases against the real local parts: moto's server runs infra/release.asl.json, its Lambda
tasks are delivered in-process to app.py, metric events are posted through the API as the
gateway agents would."""
from __future__ import annotations

import time

import pytest

GATEWAY = "shop"
STABLE, CANARY = "shop/v1/web", "shop/v2/web"


@pytest.fixture()
def sfn(aws):
    from local import stepfunctions

    arn = stepfunctions.setup(aws)
    stepfunctions.interceptors.clear()
    yield arn
    stepfunctions.interceptors.clear()


class Traffic:
    """Stands in for the gateway agents: one metric window per route per `tick`."""

    def __init__(self, api, gateway=GATEWAY):
        self.api, self.gateway = api, gateway
        self.profile = {STABLE: dict(requests=50, errors=0, latency=20), CANARY: dict(requests=50, errors=0, latency=20)}
        self.windows = 0

    def set(self, route, **figures):
        self.profile[route].update(figures)

    def tick(self):
        events = []
        for route, p in self.profile.items():
            if p["requests"] <= 0:
                continue
            tags = [f"gateways:{self.gateway}", f"routes:{route}"]
            lat = p["latency"]
            hist = [[lat - 2, p["requests"] // 4], [lat, p["requests"] // 2], [lat + 3, p["requests"] - 3 * (p["requests"] // 4)]]
            for metric, value in (("requests", p["requests"]), ("errors", p["errors"]), ("p50", lat), ("p95", lat + 2),
                                  ("p99", lat + 3), ("histogram", hist)):
                events.append({"tags": tags + [f"metrics:{metric}"], "type": "metrics", "value": value})
        r = self.api.post("/api/v1/events", events)
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
