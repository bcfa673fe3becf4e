"""`vamp workflow list|status|suspend|start|restart` against the local stack: a built-in
`metrics` workflow every 5 s (its first run at once), its runs from the `workflows:<name>` events."""
from __future__ import annotations

import time

import pytest
import requests

from tests.cli.clirelease_stack import cli_env, vamp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from local.demo_release import isolated_stack

    with isolated_stack(tmp_path_factory.mktemp("stack"), window=1.0) as running:
        yield running


@pytest.fixture(scope="module")
def env(stack, tmp_path_factory):
    url, auth = f"{stack.api_url}/api/v1", {"Authorization": f"Bearer {stack.token}"}
    r = requests.post(f"{url}/workflows", json={"name": "m", "breed": "metrics", "schedule": {"time": "PT5S"}},
                      headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    return cli_env(stack, stack.token, tmp_path_factory.mktemp("home"))


def _until(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.3)
    return value


def test_list_and_status_with_the_last_runs(env):
    listed = vamp(env, "workflow", "list")
    assert listed.code == 0 and listed.out.splitlines()[1].split()[:2] == ["m", "running"], listed.out
    ran = _until(lambda: (r := vamp(env, "workflow", "status", "m")) and "finished" in r.out and r)
    assert "workflow m: running" in ran.out and "exit 0" in ran.out and "last runs" in ran.out, ran.out
    as_json = vamp(env, "workflow", "status", "m", "-o", "json")
    import json
    doc = json.loads(as_json.out)
    assert doc["status"] == "running" and {r["outcome"] for r in doc["runs"]} >= {"started", "finished"}


def test_suspend_start_restart(env):
    suspended = vamp(env, "workflow", "suspend", "m")
    assert suspended.code == 0 and "workflow m suspended: status suspended" in suspended.err, suspended.err
    assert vamp(env, "workflow", "status", "m", "-o", "name").out.strip() == "suspended"
    started = vamp(env, "workflow", "start", "m")
    assert started.code == 0 and "status running" in started.err, started.err
    restarted = vamp(env, "workflow", "restart", "m")
    assert restarted.code == 0 and "workflow m restarted: status running" in restarted.err, restarted.err


def test_an_unknown_workflow_is_a_plain_404(env):
    ran = vamp(env, "workflow", "suspend", "nothing-here")
    assert ran.code == 1 and "404" in ran.err and "Traceback" not in ran.err, ran.err
