"""Escalation: what an SLA does when it escalates or de-escalates.

One model with a `type` rather than a pydantic union, so error paths stay the user's paths:
scale_instances / scale_cpu / scale_memory (`minimum`, `maximum`, `scale_by`, optional `target`
cluster) and the groups to_all / to_one (`escalations`).
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_serializer, model_validator

from .base import (
    Artifact,
    ListOf,
    Name,
    Problems,
    Ref,
    drop_empty_metadata,
    fail_at,
    flatten_parameters,
    generic_parameters,
    is_reference,
    ref_or,
)
from .scale import MAX_INSTANCES
from .units import MAX_CPU, MAX_MEMORY, parse_cpu, parse_memory

SCALING = ("scale_instances", "scale_cpu", "scale_memory")
_MAXIMUM = {"scale_instances": (MAX_INSTANCES, " instances"), "scale_cpu": (MAX_CPU, " cores"),
            "scale_memory": (MAX_MEMORY, "MB (16 TiB)")}
GROUPS = ("to_all", "to_one")
TYPES = (*SCALING, *GROUPS)


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class EscalationRef(Ref):
    kind: ClassVar[str] = "escalations"


def _is_escalation_reference(value: Any) -> bool:
    """`notify` is a reference; `{to_one: [...]}` is Vamp's shorthand of a group, inline."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in GROUPS:
        return False
    return is_reference(value)


class Escalation(Artifact):
    """The scaling and group types as Vamp defines them; any other type is generic, its keys
    kept as `parameters` for the workflows that act on it."""

    kind: ClassVar[str] = "escalations"
    type: str
    minimum: float | None = Field(None, ge=0)
    maximum: float | None = Field(None, ge=0)
    scale_by: float | None = Field(None, gt=0)
    target: Name | None = None
    escalations: ListOf(ref_or(EscalationRef, "Escalation", _is_escalation_reference)) | None = None
    parameters: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any) -> Any:
        """`{to_one: [...]}` / `{to_all: {escalations: [...]}}` are Vamp's group shorthands;
        scale_memory takes memory units (MB), scale_cpu cpu units; as floats."""
        if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in GROUPS:
            group, body = next(iter(data.items()))
            data = {"type": group, **(body if isinstance(body, dict) else {"escalations": body})}
        data = generic_parameters(data, TYPES, ("name", "kind", "metadata", "type"))
        if isinstance(data, dict) and data.get("type") in ("scale_memory", "scale_cpu"):
            parse = parse_memory if data["type"] == "scale_memory" else parse_cpu
            data = dict(data)
            for key in ("minimum", "maximum", "scale_by"):
                if isinstance(data.get(key), str):
                    try:
                        data[key] = parse(data[key], allow_zero=key != "scale_by")
                    except ValueError as error:
                        fail_at((key,), str(error))
        return data

    @model_validator(mode="after")
    def _rules(self) -> "Escalation":
        problems = Problems()
        if self.type not in TYPES:
            pass
        elif self.type in SCALING:
            for key in ("minimum", "maximum", "scale_by"):
                value = getattr(self, key)
                if value is None:
                    problems.add((key,), f"required for {self.type}")
                elif self.type == "scale_instances" and not float(value).is_integer():
                    problems.add((key,), "a whole number of instances")
                elif value > _MAXIMUM[self.type][0]:
                    problems.add((key,), f"at most {_whole(_MAXIMUM[self.type][0])}{_MAXIMUM[self.type][1]}")
            if self.escalations is not None:
                problems.add(("escalations",), f"not allowed for {self.type}")
            if None not in (self.minimum, self.maximum) and self.minimum > self.maximum:
                problems.add(("minimum",), "minimum is more than maximum")
        else:
            for key in ("minimum", "maximum", "scale_by", "target"):
                if getattr(self, key) is not None:
                    problems.add((key,), f"not allowed for {self.type}")
            if not self.escalations:
                problems.add(("escalations",), f"{self.type} needs at least one escalation")
        problems.check()
        return self

    @model_serializer(mode="wrap")
    def _numbers(self, handler: Any) -> dict:
        data = flatten_parameters(drop_empty_metadata(handler(self)))
        for key in ("minimum", "maximum", "scale_by"):
            if isinstance(data.get(key), float):
                data[key] = _whole(data[key])
        return data

    def targets(self) -> list[str]:
        """Every `target` cluster in this escalation and its inline children."""
        found = [self.target] if self.target else []
        for child in self.escalations or []:
            if isinstance(child, Escalation):
                found.extend(child.targets())
        return found


EscalationOrRef = ref_or(EscalationRef, Escalation, _is_escalation_reference)
