"""`vamp workflow list|status|suspend|start|restart` against the local stack: a built-in
`metrics` workflow every 5 s (its first run at once), its runs from the `workflows:<name>` events."""
from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workflow(stack):
    url, auth = f"{stack.api_url}/api/v1", {"Authorization": f"Bearer {stack.token}"}
    r = requests.post(f"{url}/workflows", json={"name": "m", "breed": "metrics", "schedule": {"time": "PT5S"}},
                      headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    return "m"


def _until(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.3)
    return value


def test_list_and_status_with_the_last_runs(vamp, workflow):
    listed = vamp("workflow", "list")
    assert listed.code == 0 and listed.out.splitlines()[1].split()[:2] == ["m", "running"], listed.out
    ran = _until(lambda: (r := vamp("workflow", "status", "m")) and "finished" in r.out and r)
    assert "workflow m: running" in ran.out and "exit 0" in ran.out and "last runs" in ran.out, ran.out
    as_json = vamp("workflow", "status", "m", "-o", "json")
    import json
    doc = json.loads(as_json.out)
    assert doc["status"] == "running" and {r["outcome"] for r in doc["runs"]} >= {"started", "finished"}


def test_suspend_start_restart(vamp, workflow):
    suspended = vamp("workflow", "suspend", "m")
    assert suspended.code == 0 and "workflow m suspended: status suspended" in suspended.out, suspended.err
    assert vamp("workflow", "status", "m", "-o", "name").out.strip() == "suspended"
    started = vamp("workflow", "start", "m")
    assert started.code == 0 and "status running" in started.out, started.err
    restarted = vamp("workflow", "restart", "m")
    assert restarted.code == 0 and "workflow m restarted: status running" in restarted.out, restarted.err


def test_an_unknown_workflow_is_a_plain_404(vamp, workflow):
    ran = vamp("workflow", "suspend", "nothing-here")
    assert ran.code == 1 and "404" in ran.err and "Traceback" not in ran.err, ran.err
