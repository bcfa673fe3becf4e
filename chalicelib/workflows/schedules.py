"""Where a workflow's time schedule lives: EventBridge Scheduler on AWS (the stack names its
schedule group), the local stack's in-process timer otherwise. One interface, one file per
system (eventbridge_scheduler.py, in_process.py)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.workflows import periods


@dataclass(frozen=True)
class TimeSchedule:
    period: str
    start: str | None = None
    repeat: int | None = None

    @property
    def seconds(self) -> float:
        return periods.seconds(self.period)

    @classmethod
    def of(cls, document: dict) -> "TimeSchedule | None":
        """The time schedule of a stored workflow document (None: event, daemon)."""
        schedule = document.get("schedule")
        time = schedule.get("time") if isinstance(schedule, dict) else None
        if not isinstance(time, dict):
            return None
        return cls(time["period"], time.get("start"), time.get("repeat"))


class WorkflowScheduler(Protocol):
    def check(self, schedule: TimeSchedule) -> None:
        """A 400 naming `schedule.time.period` (or `start`) when this system cannot run it."""

    def put(self, namespace: str, workflow: str, schedule: TimeSchedule, enabled: bool) -> None:
        """Create or replace the workflow's schedule (its run count starts again)."""

    def delete(self, namespace: str, workflow: str) -> None:
        """Remove it; nothing to remove is fine."""


class Unconfigured:
    """On Lambda without the stack's group: no timer in this process would ever fire, so a time
    schedule is refused rather than accepted and never run."""

    def check(self, schedule: TimeSchedule) -> None:
        raise ValidationFailed.at("schedule.time", "workflow time schedules are not configured on this function "
                                                   "(VAMP_WORKFLOW_SCHEDULE_GROUP)")

    def put(self, namespace: str, workflow: str, schedule: TimeSchedule, enabled: bool) -> None:
        self.check(schedule)

    def delete(self, namespace: str, workflow: str) -> None:
        return None  # nothing was ever made


def scheduler() -> WorkflowScheduler:
    s = settings()
    if not s.workflow_schedule_group and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Unconfigured()
    if s.workflow_schedule_group:
        from chalicelib.workflows.eventbridge_scheduler import EventBridgeScheduler

        return EventBridgeScheduler(s.workflow_schedule_group, s.workflow_run_function_arn,
                                    s.workflow_scheduler_role_arn)
    from chalicelib.workflows import in_process

    return in_process.TIMER
