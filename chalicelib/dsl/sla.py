"""SLA: when to escalate (response time over a sliding window) and which escalations run."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from .base import Artifact, Model, Problems, Ref, as_list, ref_or
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


class Window(Model):
    interval: Duration
    cooldown: Duration


def _wrap_escalations(value: Any) -> Any:
    """Several escalations mean all of them: they are wrapped in one `to_all`."""
    items = as_list(value)
    return [{"type": "to_all", "escalations": items}] if len(items) > 1 else items


class Sla(Artifact):
    kind: ClassVar[str] = "slas"
    type: Literal["response_time_sliding_window", "escalation_only"]
    threshold: Threshold | None = None
    window: Window | None = None
    escalations: Annotated[list[EscalationOrRef], BeforeValidator(_wrap_escalations)] = []

    @model_validator(mode="after")
    def _rules(self) -> "Sla":
        problems = Problems()
        if self.type == "response_time_sliding_window":
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
    kind: ClassVar[str] = "slas"


SlaOrRef = ref_or(SlaRef, Sla)
