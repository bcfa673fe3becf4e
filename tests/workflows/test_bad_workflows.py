"""Bad workflows are a 400 naming the field, and nothing is written or scheduled."""
from __future__ import annotations

import pytest

from chalicelib.workflows import in_process


@pytest.mark.parametrize("body, path", [
    ({"breed": "colour"}, "breed"),  # neither a built-in nor a stored breed
    ({"schedule": {"time": {"period": "PT1M", "repeat": 0}}}, "schedule.time.repeat"),
    ({"schedule": {"time": {"period": "PT0.5S"}}}, "schedule.time.period"),  # under the local timer's floor
    ({"schedule": {"time": {"period": "5 minutes"}}}, "schedule.time.period"),
    ({"schedule": {"time": {"period": "PT1M", "start": "tomorrow"}}}, "schedule.time.start"),
])
def test_bad_workflow_is_a_400_with_the_field(api, body, path):
    in_process.TIMER.clear()
    workflow = {"name": "bad", "breed": "metrics", "schedule": {"time": {"period": "PT1M"}}, **body}
    r = api.post("/api/v1/workflows", workflow)
    assert r.status_code == 400, r.body
    assert path in [e["path"] for e in r.json["errors"]], r.json
    assert api.get("/api/v1/workflows/bad").status_code == 404
    assert in_process.TIMER.entry("default", "bad") is None


def test_a_stored_breed_and_a_breed_in_the_same_request_are_known(api):
    docs = [{"kind": "breeds", "name": "job", "deployable": "busybox"},
            {"kind": "workflows", "name": "w", "breed": "job", "schedule": {"event": ["deploy"]}}]
    assert api.post("/api/v1", docs).status_code == 202
    assert api.get("/api/v1/workflows/w/status").json == "running"


def test_on_lambda_without_the_stacks_group_a_time_schedule_is_refused(api, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vamp-dev")
    r = api.post("/api/v1/workflows", {"name": "t", "breed": "metrics", "schedule": {"time": "PT1M"}})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "schedule.time"
    assert api.post("/api/v1/workflows", {"name": "e", "breed": "metrics", "schedule": {"event": ["x"]}}).status_code == 202
