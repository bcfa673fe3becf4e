"""Workflow time schedules on EventBridge Scheduler (moto's, which stores but never fires them):
the schedule exists with the right expression, target and role, is disabled while the workflow is
suspended, follows an update, is gone when the workflow is deleted or its repeat is done; what
the Scheduler cannot run is a 400 naming the period."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest

from chalicelib import aws as product_aws
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.workflows import runs
from chalicelib.workflows.eventbridge_scheduler import expression, schedule_name
from chalicelib.workflows.schedules import TimeSchedule

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:vamp-dev-workflow_run"
ROLE = "arn:aws:iam::123456789012:role/vamp-dev-WorkflowSchedulerRole"


@pytest.fixture()
def scheduler(aws, monkeypatch):
    group = f"vamp-test-{uuid.uuid4().hex[:8]}-workflows"
    client = boto3.client("scheduler", region_name="us-east-1", endpoint_url=aws)
    client.create_schedule_group(Name=group)  # the stack's (infra/resources.yaml WorkflowSchedules)
    monkeypatch.setenv("VAMP_WORKFLOW_SCHEDULE_GROUP", group)
    monkeypatch.setenv("VAMP_WORKFLOW_RUN_FUNCTION_ARN", FUNCTION)
    monkeypatch.setenv("VAMP_WORKFLOW_SCHEDULER_ROLE_ARN", ROLE)
    product_aws.reset_clients()
    yield client, group
    client.delete_schedule_group(Name=group)
    product_aws.reset_clients()


def _get(client, group, name):
    try:
        return client.get_schedule(Name=schedule_name("default", name), GroupName=group)
    except client.exceptions.ResourceNotFoundException:
        return None


def test_a_workflow_is_a_schedule_enabled_disabled_updated_and_deleted_with_it(api, scheduler):
    client, group = scheduler
    body = {"name": "m", "breed": "metrics", "schedule": {"time": {"period": "PT5M"}}}
    assert api.post("/api/v1/workflows", body).status_code == 202
    found = _get(client, group, "m")
    assert found["ScheduleExpression"] == "rate(5 minutes)" and found["State"] == "ENABLED"
    assert found["Target"]["Arn"] == FUNCTION and found["Target"]["RoleArn"] == ROLE
    assert json.loads(found["Target"]["Input"]) == {"namespace": "default", "workflow": "m"}
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"}

    api.put("/api/v1/workflows/m/status", "suspended")
    assert _get(client, group, "m")["State"] == "DISABLED"
    assert api.put("/api/v1/workflows/m", {**body, "schedule": {"time": {"period": "PT2H"}}}).status_code == 202
    found = _get(client, group, "m")
    assert found["ScheduleExpression"] == "rate(2 hours)" and found["State"] == "DISABLED"
    api.put("/api/v1/workflows/m/status", "running")
    assert _get(client, group, "m")["State"] == "ENABLED"
    assert api.delete("/api/v1/workflows/m").status_code == 202
    assert _get(client, group, "m") is None


def test_start_and_repeat(api, scheduler):
    client, group = scheduler
    body = {"name": "r", "breed": "metrics",
            "schedule": {"time": {"period": "P1D", "start": "2030-01-02T03:04:05Z", "repeat": 2}}}
    assert api.post("/api/v1/workflows", body).status_code == 202
    found = _get(client, group, "r")
    assert found["ScheduleExpression"] == "rate(1 day)"
    assert found["StartDate"].isoformat().startswith("2030-01-02T03:04:05")
    store = DynamoDBArtifactStore()
    runs.run(store, "default", "r")
    assert _get(client, group, "r") is not None
    runs.run(store, "default", "r")
    assert _get(client, group, "r") is None  # the runtime unschedules after `repeat` runs


def test_what_the_scheduler_cannot_run_is_a_400_and_nothing_is_written(api, scheduler):
    client, group = scheduler
    for period in ("PT5S", "PT90S"):
        r = api.post("/api/v1/workflows", {"name": "f", "breed": "metrics", "schedule": {"time": period}})
        assert r.status_code == 400 and r.json["errors"][0]["path"] == "schedule.time.period", r.body
    assert api.get("/api/v1/workflows/f").status_code == 404
    assert _get(client, group, "f") is None


def test_expressions_and_names():
    assert expression(TimeSchedule("PT1M")) == "rate(1 minute)"
    assert expression(TimeSchedule("PT90M")) == "rate(90 minutes)"
    assert expression(TimeSchedule("P2D")) == "rate(2 days)"
    assert expression(TimeSchedule("PT1H", "2030-01-02T03:04:05Z", 1)) == "at(2030-01-02T03:04:05)"
    assert schedule_name("default", "a/b") != schedule_name("default", "a-b")
    long = schedule_name("team-" + "x" * 60, "w" * 200)
    assert len(long) <= 64 and all(c.isalnum() or c in "-_." for c in long)
