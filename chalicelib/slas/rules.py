"""Vamp's SLA and escalation rules, without I/O.

- response_time_sliding_window: the figure is the largest of the cluster's internal gateways'
  average response times over `interval` (one per port, as Vamp's SlaActor); above `upper`
  escalates, below `lower` de-escalates; no figure (no traffic) decides nothing.
- Escalations (Vamp's EscalationActor): the SLA's list is one `to_one`; `to_one` tries its
  children from the head on escalate, from the tail on de-escalate, and stops at the first that
  changes something; `to_all` applies every child, each on what the one before left. A scale
  escalation moves the first service of its cluster (`target`, else the SLA's own) by
  `scale_by`, and only when the new value stays within [minimum, maximum]; otherwise it does
  nothing and a `to_one` tries its next child. Generic escalations are not acted on here: they
  are reported for the workflows listening for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from chalicelib.dsl.escalation import SCALING, Escalation

ESCALATE, DEESCALATE = "escalate", "deescalate"
FIELDS = {"scale_instances": "instances", "scale_cpu": "cpu", "scale_memory": "memory"}


def decide(response_times: dict[str, float], upper: float, lower: float) -> str | None:
    """escalate / deescalate / None from the per-port averages (ms)."""
    if not response_times:
        return None  # an average of nothing is no figure: not below lower, not above upper
    worst = max(response_times.values())
    if worst > upper:
        return ESCALATE
    if worst < lower:
        return DEESCALATE
    return None


@dataclass
class Action:
    """One scale change: what moves, from what to what, and the escalation that asked for it."""

    escalation: str
    cluster: str
    service: str
    field: str
    before: float
    after: float
    minimum: float
    maximum: float
    scale_by: float

    def figures(self) -> dict:
        return {"type": self.escalation, "cluster": self.cluster, "service": self.service, "field": self.field,
                "before": _whole(self.before), "after": _whole(self.after), "minimum": _whole(self.minimum),
                "maximum": _whole(self.maximum), "scale_by": _whole(self.scale_by)}


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    generic: list[dict] = field(default_factory=list)  # generic escalations met: for workflows
    refused: list[dict] = field(default_factory=list)  # scale escalations that stayed put, and why


def _whole(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 6)


# cluster -> (service name, {instances, cpu, memory}) of its first service, or None
Scales = dict[str, tuple[str, dict[str, float]]]
ResolveEscalation = Callable[[Any], Escalation | None]


def plan(cluster: str, escalations: list, direction: str, scales: Scales, resolve: ResolveEscalation,
         depth: int = 0) -> Plan:
    """What the SLA's escalations do in this direction; `scales` is updated as actions land."""
    out = Plan()
    _one(cluster, escalations, direction, scales, resolve, out, depth)
    return out


def _apply(cluster: str, node: Any, direction: str, scales: Scales, resolve: ResolveEscalation, out: Plan,
           depth: int) -> bool:
    """Apply one escalation; True when it changed something."""
    escalation = resolve(node)
    if escalation is None or depth > 16:  # an unknown reference, or references in a circle
        out.refused.append({"escalation": getattr(node, "reference", None) or getattr(node, "name", None),
                            "why": "unknown escalation" if escalation is None else "escalations nested too deep"})
        return False
    if escalation.type == "to_all":
        return _all(cluster, escalation.escalations or [], direction, scales, resolve, out, depth + 1)
    if escalation.type == "to_one":
        return _one(cluster, escalation.escalations or [], direction, scales, resolve, out, depth + 1)
    if escalation.type in SCALING:
        return _scale(cluster, escalation, direction, scales, out)
    out.generic.append({"type": escalation.type, "name": escalation.name, "parameters": escalation.parameters or {}})
    return False


def _all(cluster, children, direction, scales, resolve, out, depth) -> bool:
    changed = False
    for child in children:
        changed = _apply(cluster, child, direction, scales, resolve, out, depth) or changed
    return changed


def _one(cluster, children, direction, scales, resolve, out, depth) -> bool:
    ordered = list(children) if direction == ESCALATE else list(reversed(children))
    for child in ordered:
        if _apply(cluster, child, direction, scales, resolve, out, depth):
            return True
    return False


def _scale(cluster: str, e: Escalation, direction: str, scales: Scales, out: Plan) -> bool:
    target = e.target or cluster
    name = FIELDS[e.type]
    if target not in scales:
        out.refused.append({"type": e.type, "cluster": target, "why": f"cluster {target} has no service to scale"})
        return False
    service, scale = scales[target]
    before = float(scale[name])
    after = before + e.scale_by if direction == ESCALATE else before - e.scale_by
    after = round(after, 6)  # cpu steps (0.1 + 0.2) land on the value a user would write
    if not (e.minimum <= after <= e.maximum):
        out.refused.append({"type": e.type, "cluster": target, "service": service, "field": name,
                            "value": _whole(before), "would_be": _whole(after), "minimum": _whole(e.minimum),
                            "maximum": _whole(e.maximum),
                            "why": f"{name} {_whole(after)} would be outside [{_whole(e.minimum)}, {_whole(e.maximum)}]"})
        return False
    scale[name] = after
    out.actions.append(Action(e.type, target, service, name, before, after, e.minimum, e.maximum, e.scale_by))
    return True
