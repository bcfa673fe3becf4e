"""Where a workflow's time schedule lives: EventBridge Scheduler on AWS (the stack names its
schedule group), the local stack's in-process timer otherwise. One interface, one file per
system (eventbridge_scheduler.py, in_process.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


def scheduler() -> WorkflowScheduler:
    s = settings()
    if s.workflow_schedule_group:
        from chalicelib.workflows.eventbridge_scheduler import EventBridgeScheduler

        return EventBridgeScheduler(s.workflow_schedule_group, s.workflow_run_function_arn,
                                    s.workflow_scheduler_role_arn)
    from chalicelib.workflows import in_process

    return in_process.TIMER
