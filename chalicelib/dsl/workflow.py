"""Workflow: a script breed run as a daemon, on a time schedule, or on events."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_serializer, model_validator

from .base import (
    Arguments,
    Artifact,
    Dialects,
    EnvironmentVariables,
    Model,
    Problems,
    SafeText,
    rename,
    rename_dialect,
    resolver,
)
from .blueprint import known_breed
from .breed import Breed, BreedOrRef, OptionalHealthChecks
from .event import Tags
from .scale import ScaleOrRef

STATUSES = ("starting", "running", "stopping", "suspended", "suspending", "restarting")
_PERIOD_RE = re.compile(
    r"^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)


def _period(value: str) -> str:
    if not _PERIOD_RE.fullmatch(value):
        raise ValueError(f"invalid period {value!r}: an ISO-8601 duration like PT1M")
    return value


def _timestamp(value: Any) -> Any:
    """YAML reads `start: 2007-12-03T08:15:30Z` as a timestamp, as Vamp's reader takes it: kept
    as its ISO-8601 text."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _start(value: str) -> str:
    if value != "now":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"invalid start {value!r}: `now` or an ISO-8601 timestamp") from None
    return value


class TimeSchedule(Model):
    period: Annotated[str, AfterValidator(_period)]
    start: Annotated[str, BeforeValidator(_timestamp), AfterValidator(_start)] | None = None
    repeat: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"period": data} if isinstance(data, str) else data


class EventSchedule(Model):
    tags: Tags

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {"tags": data}


class Schedule(Model):
    """`daemon`, `{time: {period, start, repeat}}` (or `time: PT1M`), `{event: [tags]}`."""

    daemon: bool = False
    time: TimeSchedule | None = None
    event: EventSchedule | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str) and data.strip().lower() == "daemon":
            return {"daemon": True}
        if isinstance(data, dict) and data.get("daemon") in ({}, None) and "daemon" in data:
            return {**data, "daemon": True}
        return data

    @model_validator(mode="after")
    def _one(self) -> "Schedule":
        if [self.daemon, self.time is not None, self.event is not None].count(True) != 1:
            raise ValueError("a schedule is one of `daemon`, `time` or `event`")
        return self

    @model_serializer(mode="wrap")
    def _short(self, handler: Any) -> Any:
        if self.daemon:
            return "daemon"
        return {k: v for k, v in handler(self).items() if k != "daemon"}


class Workflow(Artifact):
    kind: ClassVar[str] = "workflows"
    breed: BreedOrRef
    schedule: Schedule
    status: Literal[STATUSES] = "starting"
    scale: ScaleOrRef | None = None
    environment_variables: EnvironmentVariables = {}
    arguments: Arguments = []
    health_checks: OptionalHealthChecks = None
    network: SafeText | None = None
    dialects: Dialects = {}

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return rename_dialect(rename(data, "env", "environment_variables"))

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> "Workflow":
        problems = Problems()
        if isinstance(self.breed, Breed) and self.breed.name is None:
            problems.add(("breed", "name"), "an inline breed needs a name")
        breed = known_breed(self.breed, resolver(info))
        for key, value in self.environment_variables.items():
            if value is None or value == "~":  # the workflow is the last scope: nothing could fill it
                problems.add(("environment_variables", key), "a workflow's environment variable needs a value")
            elif breed is not None and key not in breed.environment_variables:
                problems.add(("environment_variables", key),
                             f"{key!r} is not an environment variable of breed {breed.name!r}")
        problems.check()
        return self
