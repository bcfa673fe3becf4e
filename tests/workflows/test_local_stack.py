"""The issue's example on the local stack, through its HTTP server: `{name: m, breed: metrics,
schedule: {time: {period: PT5S}}}` runs every 5 s (first at once) and publishes metric events; it
stops when suspended."""
from __future__ import annotations

import time

import pytest
import requests

from chalicelib.workflows import in_process


@pytest.fixture()
def stack(aws, tmp_path, monkeypatch):
    from local.stack import LocalStack, free_port

    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "20000-24999")
    in_process.TIMER.clear()
    s = LocalStack(api_port=free_port(), state_dir=tmp_path, persist=False, quiet=True, gateways=False)
    s.start()
    yield s
    s.stop()
    in_process.TIMER.clear()


def test_the_example_runs_every_five_seconds_and_publishes_metrics(stack):
    url, auth = f"{stack.api_url}/api/v1", {"Authorization": f"Bearer {stack.token}"}
    gateway = {"name": "web", "port": "9072/http", "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}}
    assert requests.post(f"{url}/gateways", json=gateway, headers=auth, timeout=30).status_code == 202
    workflow = "name: m\nbreed: metrics\nschedule:\n  time:\n    period: PT5S\n"
    r = requests.post(f"{url}/workflows", data=workflow, timeout=30,
                      headers={**auth, "Content-Type": "application/x-yaml"})
    assert r.status_code == 202, r.text

    def finished():
        q = requests.get(f"{url}/events", params={"tag": ["workflows:m", "finished"]}, headers=auth, timeout=30)
        return q.json()

    deadline = time.monotonic() + 30
    while len(finished()) < 2:
        assert time.monotonic() < deadline, "two runs never finished"
        time.sleep(0.2)
    runs = finished()
    assert runs[0]["id"] != runs[1]["id"] and all(e["value"]["exit_code"] == 0 for e in runs)
    rate = requests.get(f"{url}/events", params={"tag": ["gateways:web", "metrics:rate"]}, headers=auth, timeout=30)
    assert len(rate.json()) >= 2 and rate.json()[0]["type"] == "metrics"
    assert requests.put(f"{url}/workflows/m/status", data="suspended", headers=auth, timeout=30).json() == "suspended"
    assert in_process.TIMER.take_due(time.time() + 3600) == []
