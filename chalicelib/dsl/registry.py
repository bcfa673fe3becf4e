"""Every artifact kind's model, by its plural name, and the kinds another artifact may reference
by name: the one table parse, dump and the reference helpers look kinds up in."""
from __future__ import annotations

from .base import KIND_NAMES
from .blueprint import Blueprint
from .breed import Breed, BreedRef
from .condition import Condition, ConditionRef
from .escalation import Escalation, EscalationRef
from .gateway import Gateway, Route, RouteRef
from .release import ReleasePolicy, ReleasePolicyRef
from .rewrite import Rewrite, RewriteRef
from .scale import Scale, ScaleRef
from .sla import Sla, SlaRef
from .template import Template
from .workflow import Workflow

KINDS: dict[str, type] = {
    "breeds": Breed,
    "blueprints": Blueprint,
    "scales": Scale,
    "slas": Sla,
    "escalations": Escalation,
    "routes": Route,
    "conditions": Condition,
    "rewrites": Rewrite,
    "workflows": Workflow,
    "gateways": Gateway,
    "templates": Template,
    "release-policies": ReleasePolicy,
}
assert tuple(KINDS) == KIND_NAMES

# Kinds that can be referenced by name from inside another artifact.
REF_TYPES: dict[str, type] = {
    cls.kind: cls for cls in (BreedRef, ScaleRef, SlaRef, EscalationRef, RouteRef, ConditionRef, RewriteRef,
                              ReleasePolicyRef)
}
