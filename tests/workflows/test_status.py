"""Workflows' status as Vamp's through the API: transitions, updates only while suspended (409
naming `status`), scheduled/unscheduled events, and no status update lost to a concurrent one."""
from __future__ import annotations

import threading

import pytest

from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.workflows import in_process, lifecycle

WORKFLOW = {"name": "m", "breed": "metrics", "schedule": {"time": {"period": "PT1M"}}}


@pytest.fixture(autouse=True)
def _timer():
    in_process.TIMER.clear()
    yield
    in_process.TIMER.clear()


def _events(what, name="m"):
    return event_store().query("default", EventQuery(tags=[f"workflows:{name}", what], per_page=100)).items


def test_created_running_and_scheduled(api):
    assert api.post("/api/v1/workflows", WORKFLOW).status_code == 202
    assert api.get("/api/v1/workflows/m/status").json == "running"
    assert api.get("/api/v1/workflows/m").json["status"] == "running"
    assert in_process.TIMER.entry("default", "m").enabled
    assert len(_events("scheduled")) == 1


def test_suspend_start_restart(api):
    api.post("/api/v1/workflows", WORKFLOW)
    r = api.put("/api/v1/workflows/m/status", "suspended")
    assert r.status_code == 202 and r.json == "suspended"
    assert api.get("/api/v1/workflows/m/status").json == "suspended"
    assert not in_process.TIMER.entry("default", "m").enabled  # kept, disabled
    assert len(_events("unscheduled")) == 1
    assert api.put("/api/v1/workflows/m/status", "suspend").json == "suspended"  # nothing to do
    assert len(_events("unscheduled")) == 1
    assert api.put("/api/v1/workflows/m/status", {"status": "running"}).json == "running"
    assert in_process.TIMER.entry("default", "m").enabled
    assert api.put("/api/v1/workflows/m/status", "restart").json == "running"
    assert len(_events("scheduled")) == 3 and len(_events("unscheduled")) == 2


def test_status_requests_refused(api):
    api.post("/api/v1/workflows", WORKFLOW)
    for body in ("stopping", "suspending", {"status": 1}, {"status": "running", "x": 1}):
        r = api.put("/api/v1/workflows/m/status", body)
        assert r.status_code == 400 and r.json["errors"][0]["path"] == "status", body
    assert api.get("/api/v1/workflows/none/status").status_code == 404
    assert api.put("/api/v1/workflows/none/status", "suspended").status_code == 404


def test_updated_only_while_suspended(api):
    api.post("/api/v1/workflows", WORKFLOW)
    changed = {**WORKFLOW, "schedule": {"time": {"period": "PT2M"}}}
    r = api.put("/api/v1/workflows/m", changed)
    assert r.status_code == 409 and r.json["errors"][0]["path"] == "status"
    assert api.get("/api/v1/workflows/m").json["schedule"] == {"time": {"period": "PT1M"}}
    assert api.put("/api/v1/workflows/m", api.get("/api/v1/workflows/m").json).status_code == 202  # no change
    api.put("/api/v1/workflows/m/status", "suspended")
    assert api.put("/api/v1/workflows/m", changed).status_code == 202
    stored = api.get("/api/v1/workflows/m").json
    assert stored["status"] == "suspended" and stored["schedule"] == {"time": {"period": "PT2M"}}
    entry = in_process.TIMER.entry("default", "m")
    assert entry.every == 120 and not entry.enabled
    api.put("/api/v1/workflows/m/status", "running")
    assert in_process.TIMER.entry("default", "m").enabled


def test_created_suspended_is_not_scheduled(api):
    assert api.post("/api/v1/workflows", {**WORKFLOW, "status": "suspended"}).status_code == 202
    assert api.get("/api/v1/workflows/m/status").json == "suspended"
    assert not in_process.TIMER.entry("default", "m").enabled
    assert _events("scheduled") == []


def test_deleted_is_unscheduled(api):
    api.post("/api/v1/workflows", WORKFLOW)
    assert api.delete("/api/v1/workflows/m").status_code == 202
    assert in_process.TIMER.entry("default", "m") is None
    assert len(_events("unscheduled")) == 1


def test_readers_read_operators_change(api):
    api.post("/api/v1/workflows", WORKFLOW)
    reader = api.as_role("reader")
    assert reader.get("/api/v1/workflows/m/status").status_code == 200
    assert reader.put("/api/v1/workflows/m/status", "suspended").status_code == 403
    assert api.as_role("operator").put("/api/v1/workflows/m/status", "suspended").status_code == 202


def test_concurrent_status_writers_never_lose_an_update(api):
    """Writers racing on the same workflow: every one's request is applied in some order (the
    losers of a conditional write re-read), so the last status is one of theirs and the version
    counts every write."""
    api.post("/api/v1/workflows", WORKFLOW)
    store = DynamoDBArtifactStore()
    before = store.get("default", "workflows", "m").version
    requests = ["suspend", "start"] * 3
    outcomes, failures = [], []

    def write(request):
        try:
            outcomes.append(lifecycle.set_status(store, "default", "m", request, lambda ns, ev: None))
        except Exception as e:  # noqa: BLE001 - counted below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    stored = store.get("default", "workflows", "m")
    assert stored.document["status"] in ("suspended", "running")
    assert stored.version > before
    assert sorted(set(outcomes)) <= ["running", "suspended"]


def test_a_built_in_daemon_is_refused_naming_schedule(api):
    """A built-in runs in the control plane on a time or event schedule; daemons are script or
    container breeds on the driver (decision 0043, tests/workflows/test_daemons.py)."""
    r = api.post("/api/v1/workflows", {"name": "d", "breed": "metrics", "schedule": "daemon"})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "schedule"
    assert _events("scheduled", "d") == []


def test_a_schedule_refused_at_write_is_made_by_the_pass(api, monkeypatch):
    """The Scheduler away when the workflow was written: it stays `starting` (the truth), and the
    scheduled pass schedules it once it is older than the grace, with its event, once."""
    import time

    away = [True]
    put = in_process.TIMER.put

    def refuse(*a, **k):
        if away[0]:
            raise RuntimeError("Scheduler away")
        return put(*a, **k)

    monkeypatch.setattr(in_process.TIMER, "put", refuse)
    assert api.post("/api/v1/workflows", WORKFLOW).status_code == 202
    assert api.get("/api/v1/workflows/m/status").json == "starting"
    assert in_process.TIMER.entry("default", "m") is None
    store = DynamoDBArtifactStore()
    publish = event_store().publish
    assert lifecycle.retry_starting(store, "default", publish) == []  # within the grace: its writer's
    later = time.time() + lifecycle.STARTING_GRACE + 1
    assert lifecycle.retry_starting(store, "default", publish, now=later) == []  # still refused: still starting
    assert api.get("/api/v1/workflows/m/status").json == "starting"
    away[0] = False  # the Scheduler is back
    assert lifecycle.retry_starting(store, "default", publish, now=later) == ["m"]
    assert api.get("/api/v1/workflows/m/status").json == "running"
    assert in_process.TIMER.entry("default", "m").enabled
    assert lifecycle.retry_starting(store, "default", publish, now=later) == []  # running now: nothing to do
    assert len(_events("scheduled")) == 1
