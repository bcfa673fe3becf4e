"""The Vamp DSL: pydantic models per kind, the condition grammar, parse/dump and references.

Pure Python, no I/O: cross-artifact checks and templates' `import` go through the `resolve`
callable the caller passes (kind, name) -> stored document or None.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import ValidationError

from ..errors import ValidationFailed
from .base import Model
from .blueprint import Blueprint, BlueprintGateway, Cluster, ClusterGateway, Service
from .breed import Breed, BreedRef, Deployable, HealthCheck
from .condition import Condition, ConditionRef
from .condition_grammar import parse_condition, to_text
from .document import dump, field_errors, normalize_kind_or_fail, parse
from .escalation import Escalation, EscalationRef
from .event import Event, expand_tags
from .gateway import Gateway, GatewayService, Route, RouteRef, fill_weights
from .references import Reference, expand_references, only_references, references
from .registry import KINDS, REF_TYPES
from .release import Release, ReleasePolicy, ReleasePolicyRef
from .rewrite import Rewrite, RewriteRef
from .scale import Scale, ScaleRef, default_scale
from .sla import Sla, SlaRef
from .template import Template
from .workflow import Schedule, Workflow


def normalize_kind(kind: str) -> str:
    """`breed` or `breeds` -> `breeds`; anything else raises ValidationFailed at `kind`."""
    return normalize_kind_or_fail(kind)


def parse_event(data: Any) -> Event:
    """Validate an event body (tags, value, timestamp, type); tags come back expanded."""
    if not isinstance(data, dict):
        raise ValidationFailed.at("", "an event is a map")
    try:
        return Event.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed("Invalid event", field_errors(error)) from None


__all__ = [
    "KINDS", "REF_TYPES", "Blueprint", "BlueprintGateway", "Breed", "BreedRef", "Cluster",
    "ClusterGateway", "Condition", "ConditionRef", "Deployable", "Escalation", "EscalationRef",
    "Event", "Gateway", "GatewayService", "HealthCheck", "Reference", "Release", "ReleasePolicy", "ReleasePolicyRef",
    "Rewrite", "RewriteRef",
    "Route", "RouteRef", "Scale", "ScaleRef", "Schedule", "Service", "Sla", "SlaRef", "Template",
    "Workflow", "default_scale", "dump", "expand_references", "expand_tags", "fill_weights",
    "normalize_kind", "only_references", "parse", "parse_condition", "parse_event", "references",
    "to_text",
]


def build_models() -> int:
    """Build every deferred model now; returns how many were built. pydantic builds a deferred
    model on its first use and not thread-safely: processes that validate on several threads
    (the local stack's API and moto's task delivery, the test suite) call this first. A Lambda
    handles one request at a time and keeps the cheaper cold start."""
    for module in pkgutil.iter_modules(__path__):  # every kind's module, so every model exists
        importlib.import_module(f"{__name__}.{module.name}")
    for extra in ("chalicelib.deployments.model",):  # models built on the DSL's base elsewhere
        try:
            importlib.import_module(extra)
        except ImportError:
            pass
    built, pending = 0, list(Model.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__pydantic_complete__:
            cls.model_rebuild(force=True)
            built += 1
    return built
