"""Runs of the built-in breeds: the figures they publish from seeded agent metric events, the run
events, `repeat`, and the local stack's timer firing a sub-minute period and stopping when the
workflow is suspended or deleted."""
from __future__ import annotations

import time

import pytest

import app
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.workflows import in_process, runs
from local.workflow_schedules import WorkflowTimer, reload

ROUTE_OLD, ROUTE_NEW = "sava/sava/sava:1.0.0/webport", "sava/sava/sava:1.1.0/webport"
GATEWAY = {"name": "sava/9050", "port": "9050/http",
           "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}}


@pytest.fixture(autouse=True)
def _timer():
    in_process.TIMER.clear()
    yield
    in_process.TIMER.clear()


def _query(*tags, type=None):
    return event_store().query("default", EventQuery(tags=list(tags), type=type, per_page=100)).items


def _seed(api):
    """A gateway with agent-posted windows: the gateway's own figures and one route's."""
    assert api.post("/api/v1/gateways", GATEWAY).status_code == 202
    body = {"status": "applied", "generation": 0, "sent": time.time(), "interval": 5.0}
    assert api.put("/api/v1/vga/nodes/n1", body, token=api.token_of("agent")).status_code == 200
    events = []
    for route, figures in ((None, {"requests": 120, "errors": 0, "responseTime": 10.0}),
                           (None, {"requests": 60, "errors": 0, "responseTime": 20.0}),
                           ("[127.0.0.1:8081]", {"requests": 30, "errors": 2, "responseTime": 50.0})):
        for metric, value in figures.items():
            tags = ["gateways:sava/9050", f"metrics:{metric}"] + ([f"routes:{route}"] if route else [])
            events.append({"tags": tags, "type": "metrics", "value": value})
    assert api.post("/api/v1/events", events, token=api.token_of("agent")).status_code == 201


def _workflow(api, name, breed, period="PT1M", **time_fields):
    body = {"name": name, "breed": breed, "schedule": {"time": {"period": period, **time_fields}}}
    r = api.post("/api/v1/workflows", body)
    assert r.status_code == 202, r.body


def test_metrics_publishes_rate_and_response_time_per_gateway_and_route(api):
    _seed(api)
    _workflow(api, "m", "metrics")
    outcome = runs.run(DynamoDBArtifactStore(), "default", "m")
    assert outcome["exit_code"] == 0
    rate = _query("gateways:sava/9050", "metrics:rate", type="metrics")
    own = [e for e in rate if not any(t.startswith("routes:") for t in e["tags"])]
    route = [e for e in rate if "routes:[127.0.0.1:8081]" in e["tags"]]
    assert [e["value"] for e in own] == [pytest.approx(180 / 60)]  # the gateway's own windows only
    assert [e["value"] for e in route] == [pytest.approx(30 / 60)]
    times = {tuple(sorted(e["tags"])): e["value"] for e in _query("metrics:responseTime", type="metrics")
             if "posted_by" not in e}
    assert sorted(times.values()) == [15.0, 50.0]
    # the API's own figures still count the agents' events only (not the workflow's)
    assert api.get("/api/v1/metrics/gateways/sava%2F9050/rate").json["value"] == pytest.approx(3.0)


def test_health_per_gateway_route_and_deployment(api):
    _seed(api)
    _workflow(api, "h", "health")
    runs.run(DynamoDBArtifactStore(), "default", "h")
    health = {tuple(t for t in e["tags"] if ":" in t): e["value"] for e in _query("health", type="health")}
    assert health[("gateways:sava/9050",)] == 1
    assert health[("gateways:sava/9050", "routes:[127.0.0.1:8081]")] == 0  # 2 requests ended in a 5xx


def test_allocation_per_deployment(aws):
    store = DynamoDBArtifactStore()
    from chalicelib.store.artifact_store import Write

    deployment = {"name": "d", "clusters": {
        "c1": {"services": [{"breed": {"name": "a"}, "scale": {"cpu": 0.5, "memory": "256MB", "instances": 3}},
                            {"breed": {"name": "b"}, "scale": {"cpu": 2, "memory": "1GB", "instances": 1}}]},
        "c2": {"services": [{"breed": {"name": "c"}, "scale": {"cpu": 0.25, "memory": "128MB", "instances": 2}}]}}}
    workflow = {"name": "a", "breed": {"reference": "allocation"}, "schedule": {"time": {"period": "PT1M"}},
                "status": "running"}
    store.apply("default", [Write("deployments", "d", deployment, None), Write("workflows", "a", workflow, None)])
    assert runs.run(store, "default", "a")["exit_code"] == 0
    [event] = _query("deployments:d", "allocation", type="allocation")
    assert event["value"] == {"instances": 6, "cpu": 4.0, "memory": 2024.0}


def test_run_events_and_a_failed_run(api, aws):
    _workflow(api, "m", "metrics")
    runs.run(DynamoDBArtifactStore(), "default", "m")
    [started] = _query("workflows:m", "started")
    [finished] = _query("workflows:m", "finished")
    assert finished["value"]["exit_code"] == 0 and finished["value"]["duration"] >= 0
    assert finished["value"]["log"][-1] == "published 0 events"
    assert api.post("/api/v1/breeds", {"name": "script", "deployable": "x"}).status_code == 201
    _workflow(api, "s", "script")
    outcome = runs.run(DynamoDBArtifactStore(), "default", "s")
    [failed] = _query("workflows:s", "failed")
    # a container breed on the local driver (tests/workflows/test_script_runs.py runs command breeds)
    assert "`command` breeds only" in failed["value"]["error"] and outcome == failed["value"]


def test_log_tail_is_bounded():
    lines = [f"line {i} " + "x" * 500 for i in range(100)]
    out = runs.tail(lines)
    assert len(out) == runs.TAIL_LINES and all(len(line) <= runs.TAIL_LINE_CHARS for line in out)
    assert out[-1].startswith("line 99 ")


def test_a_suspended_workflow_does_not_run(api):
    _workflow(api, "m", "metrics")
    api.put("/api/v1/workflows/m/status", "suspended")
    assert runs.run(DynamoDBArtifactStore(), "default", "m") == {"skipped": "suspended"}
    assert _query("workflows:m", "started") == []


def test_repeat_unschedules_after_n_runs(api):
    _workflow(api, "r", "metrics", repeat=2)
    store = DynamoDBArtifactStore()
    runs.run(store, "default", "r")
    assert in_process.TIMER.entry("default", "r") is not None
    runs.run(store, "default", "r")
    assert in_process.TIMER.entry("default", "r") is None
    assert [e["value"]["reason"] for e in _query("workflows:r", "unscheduled")] == ["2 runs of 2"]


def test_firings_at_once_never_run_more_than_repeat(api):
    """A run outliving its period: firings overlap. Each claims its run slot conditionally before
    it starts, so 8 at once make exactly `repeat` runs, and the late ones are skipped."""
    from concurrent.futures import ThreadPoolExecutor

    _workflow(api, "r", "metrics", repeat=3)
    store = DynamoDBArtifactStore()
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: runs.run(store, "default", "r"), range(8)))
    assert sum(1 for o in outcomes if o.get("exit_code") == 0) == 3, outcomes
    assert sum(1 for o in outcomes if "skipped" in o) == 5, outcomes
    assert len(_query("workflows:r", "started")) == 3
    assert in_process.TIMER.entry("default", "r") is None


def test_a_restart_counts_repeat_from_zero(api):
    _workflow(api, "r", "metrics", repeat=1)
    store = DynamoDBArtifactStore()
    assert runs.run(store, "default", "r")["exit_code"] == 0
    assert runs.run(store, "default", "r") == {"skipped": "repeat: every run of this scheduling has run"}
    assert api.put("/api/v1/workflows/r/status", "restarting").status_code == 202
    assert runs.run(store, "default", "r")["exit_code"] == 0  # a new scheduling: its own run
    assert len(_query("workflows:r", "started")) == 2


def _wait_for(condition, limit=20.0):
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_local_timer_fires_a_sub_minute_period_and_stops_when_suspended_or_deleted(api):
    _seed(api)
    _workflow(api, "m", "metrics", period="PT1S")
    timer = WorkflowTimer(app.workflow_run)
    timer.start(reload_store=False)
    try:
        _wait_for(lambda: len(_query("workflows:m", "finished")) >= 2)
        assert len(_query("gateways:sava/9050", "metrics:rate", type="metrics")) >= 2
        api.put("/api/v1/workflows/m/status", "suspended")
        assert in_process.TIMER.take_due(time.time() + 3600) == []  # nothing due, ever
        api.put("/api/v1/workflows/m/status", "running")
        _wait_for(lambda: timer.runs[("default", "m")] >= 3)
        api.delete("/api/v1/workflows/m")
        assert in_process.TIMER.entry("default", "m") is None
    finally:
        timer.stop()


def test_the_stack_restarted_schedules_what_the_store_holds(api):
    _workflow(api, "m", "metrics")
    _workflow(api, "n", "metrics")
    api.put("/api/v1/workflows/n/status", "suspended")
    in_process.TIMER.clear()
    assert reload() == 2
    assert in_process.TIMER.entry("default", "m").enabled and not in_process.TIMER.entry("default", "n").enabled


def test_health_per_deployment_cluster_and_service_from_its_routes(api):
    from chalicelib.store.artifact_store import Write

    store = DynamoDBArtifactStore()
    gateway = {"name": "sava/9050", "port": "9050/http",
               "routes": {ROUTE_OLD: {"weight": "80%"}, ROUTE_NEW: {"weight": "20%"}}}
    deployment = {"name": "sava", "clusters": {"sava": {"services": [
        {"breed": {"name": "sava:1.0.0"}, "scale": {"cpu": 1, "memory": "1GB", "instances": 1}},
        {"breed": {"name": "sava:1.1.0"}, "scale": {"cpu": 1, "memory": "1GB", "instances": 1}}]},
        "other": {"services": [{"breed": {"name": "db"}, "scale": {"cpu": 1, "memory": "1GB", "instances": 1}}]}}}
    store.apply("default", [Write("gateways", "sava/9050", gateway, None), Write("deployments", "sava", deployment, None)])
    body = {"status": "applied", "generation": 0, "sent": time.time(), "interval": 5.0}
    assert api.put("/api/v1/vga/nodes/n1", body, token=api.token_of("agent")).status_code == 200
    events = [{"tags": ["gateways:sava/9050", f"routes:{route}", "metrics:errors"], "type": "metrics", "value": errors}
              for route, errors in ((ROUTE_OLD, 0), (ROUTE_NEW, 3))]
    assert api.post("/api/v1/events", events, token=api.token_of("agent")).status_code == 201
    _workflow(api, "h", "health")
    runs.run(store, "default", "h")
    health = {tuple(t for t in e["tags"] if ":" in t): e["value"] for e in _query("health", type="health")}
    assert health[("deployments:sava", "clusters:sava", "services:sava:1.0.0")] == 1
    assert health[("deployments:sava", "clusters:sava", "services:sava:1.1.0")] == 0
    assert health[("deployments:sava", "clusters:sava")] == 0
    assert health[("deployments:sava", "clusters:other")] == 1
    assert health[("deployments:sava",)] == 0
