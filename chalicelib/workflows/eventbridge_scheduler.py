"""Workflow time schedules on EventBridge Scheduler: one schedule per workflow in the stack's
schedule group, targeting the `workflow_run` function with {namespace, workflow} as input,
assumed through the scheduler's role (infra/resources.yaml, `# --- workflows (0039) ---`)."""
from __future__ import annotations

import hashlib
import json
import re

from chalicelib import aws
from chalicelib.errors import ValidationFailed
from chalicelib.workflows import periods

_UNSAFE = re.compile(r"[^0-9A-Za-z_.-]")
MAX_NAME = 64  # EventBridge Scheduler's limit on a schedule's name


def schedule_name(namespace: str, workflow: str) -> str:
    """`<namespace>-<workflow>` made of what the Scheduler allows, with a digest of the exact pair
    so two workflows never share one (`a/b` and `a-b`)."""
    digest = hashlib.sha256(f"{namespace}/{workflow}".encode()).hexdigest()[:10]
    readable = _UNSAFE.sub("-", f"{namespace}-{workflow}")[: MAX_NAME - len(digest) - 1]
    return f"{readable}-{digest}"


def expression(schedule) -> str:
    """`rate(...)` from the period; `at(...)` for one run at `start`."""
    start = periods.start_time(schedule.start)
    if schedule.repeat == 1 and start is not None:
        return f"at({start.strftime('%Y-%m-%dT%H:%M:%S')})"
    return periods.rate_expression(schedule.period)


class EventBridgeScheduler:
    def __init__(self, group: str, function_arn: str | None, role_arn: str | None):
        self.group, self.function_arn, self.role_arn = group, function_arn, role_arn

    def check(self, schedule) -> None:
        periods.rate_expression(schedule.period)  # a 400 naming schedule.time.period
        if not (self.function_arn and self.role_arn):
            raise ValidationFailed.at("schedule.time", "workflow time schedules are not configured on this stack "
                                                       "(VAMP_WORKFLOW_RUN_FUNCTION_ARN, VAMP_WORKFLOW_SCHEDULER_ROLE_ARN)")

    def put(self, namespace: str, workflow: str, schedule, enabled: bool) -> None:
        self.check(schedule)
        client = aws.client("scheduler")
        name = schedule_name(namespace, workflow)
        request = {
            "Name": name, "GroupName": self.group,
            "ScheduleExpression": expression(schedule), "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if enabled else "DISABLED",
            "Target": {"Arn": self.function_arn, "RoleArn": self.role_arn,
                       "Input": json.dumps({"namespace": namespace, "workflow": workflow})},
            "Description": f"vamp workflow {namespace}/{workflow}"[:512],
        }
        start = periods.start_time(schedule.start)
        if start is not None and not request["ScheduleExpression"].startswith("at("):
            request["StartDate"] = start
        try:
            client.update_schedule(**request)
        except client.exceptions.ResourceNotFoundException:
            client.create_schedule(**request)

    def settle_at(self, namespace: str, workflow: str, handle: str, when) -> None:
        """A one-shot schedule (deleted once it fired) invoking workflow_run with `settle` at
        `when` (UTC): an asynchronous run past its deadline is stopped and reported even if
        nothing else runs in the namespace (decision 0039)."""
        if not (self.function_arn and self.role_arn):
            return
        digest = hashlib.sha256(f"{namespace}/{workflow}/{handle}".encode()).hexdigest()[:16]
        readable = _UNSAFE.sub("-", f"settle-{namespace}-{workflow}")[: MAX_NAME - len(digest) - 1]
        aws.client("scheduler").create_schedule(
            Name=f"{readable}-{digest}", GroupName=self.group,
            ScheduleExpression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})", ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
            Target={"Arn": self.function_arn, "RoleArn": self.role_arn,
                    "Input": json.dumps({"namespace": namespace, "workflow": workflow, "settle": handle})},
            Description=f"vamp workflow run {namespace}/{workflow}: settle at its deadline"[:512])

    def delete(self, namespace: str, workflow: str) -> None:
        client = aws.client("scheduler")
        try:
            client.delete_schedule(Name=schedule_name(namespace, workflow), GroupName=self.group)
        except client.exceptions.ResourceNotFoundException:
            pass

    def describe(self, namespace: str, workflow: str) -> dict | None:
        client = aws.client("scheduler")
        try:
            return client.get_schedule(Name=schedule_name(namespace, workflow), GroupName=self.group)
        except client.exceptions.ResourceNotFoundException:
            return None
