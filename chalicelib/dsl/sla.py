"""SLA: when to escalate (response time over a sliding window) and which escalations run."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_serializer, model_validator

from .base import (
    Artifact,
    Model,
    Problems,
    Ref,
    as_list,
    drop_empty_metadata,
    flatten_parameters,
    generic_parameters,
    is_reference,
    ref_or,
)
from .escalation import Escalation, EscalationOrRef
from .units import Duration

_MS_SUFFIX = "ms"


def _milliseconds(value: Any) -> Any:
    if isinstance(value, str) and value.strip().endswith(_MS_SUFFIX):
        return value.strip()[: -len(_MS_SUFFIX)].strip()
    return value


Milliseconds = Annotated[int, BeforeValidator(_milliseconds), Field(ge=0)]


class Threshold(Model):
    upper: Milliseconds
    lower: Milliseconds


# The SLA check averages the agents' metric events over `interval`: at least one of their
# 10 s windows can fall in it only from 1 s on, and a day is the telemetry API's longest window.
MAX_INTERVAL = 86_400


class Window(Model):
    interval: Annotated[Duration, Field(ge=1, le=MAX_INTERVAL)]
    cooldown: Duration


def _wrap_escalations(value: Any) -> Any:
    """Several escalations mean all of them: they are wrapped in one `to_all`."""
    items = as_list(value)
    return [{"type": "to_all", "escalations": items}] if len(items) > 1 else items


TYPES = ("response_time_sliding_window", "escalation_only")


class Sla(Artifact):
    """`response_time_sliding_window` and `escalation_only` as Vamp defines them; any other
    type is generic, its keys kept as `parameters` for the workflows that act on it."""

    kind: ClassVar[str] = "slas"
    type: str
    threshold: Threshold | None = None
    window: Window | None = None
    escalations: Annotated[list[EscalationOrRef], BeforeValidator(_wrap_escalations)] = []
    parameters: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _generic(cls, data: Any) -> Any:
        return generic_parameters(data, TYPES, ("name", "kind", "metadata", "type", "escalations"))

    @model_serializer(mode="wrap")
    def _quiet(self, handler: Any) -> Any:
        return flatten_parameters(drop_empty_metadata(handler(self)))

    @property
    def generic(self) -> bool:
        return self.type not in TYPES

    @model_validator(mode="after")
    def _rules(self) -> "Sla":
        problems = Problems()
        if self.generic:
            pass
        elif self.type == "response_time_sliding_window":
            for key in ("threshold", "window"):
                if getattr(self, key) is None:
                    problems.add((key,), f"required for {self.type}")
            if self.threshold and self.threshold.lower > self.threshold.upper:
                problems.add(("threshold", "lower"), "lower is more than upper")
        else:
            for key in ("threshold", "window"):
                if getattr(self, key) is not None:
                    problems.add((key,), f"not allowed for {self.type}")
        problems.check()
        return self

    def targets(self) -> list[str]:
        return [t for e in self.escalations if isinstance(e, Escalation) for t in e.targets()]


class SlaRef(Ref):
    """A stored SLA by name, with the escalations this cluster gives it (Vamp's SlaReference)."""

    kind: ClassVar[str] = "slas"
    escalations: Annotated[list[EscalationOrRef], BeforeValidator(_wrap_escalations)] = []

    @model_serializer(mode="wrap")
    def _quiet(self, handler: Any) -> Any:
        data = handler(self)
        if data.get("escalations") == []:
            del data["escalations"]
        return data


def _is_sla_reference(value: Any) -> bool:
    if isinstance(value, dict) and ("ref" in value or "reference" in value):
        return set(value) <= {"ref", "reference", "escalations"}
    return is_reference(value)


SlaOrRef = ref_or(SlaRef, Sla, _is_sla_reference)
