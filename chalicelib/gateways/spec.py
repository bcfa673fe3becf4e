"""What the renderer needs of a gateway, resolved: every reference followed, every condition a
syntax tree. Plain dataclasses; `from_documents` (the only part that needs the DSL, imported
when called) builds them from stored documents and a look-up of stored routes, conditions and
rewrites.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from chalicelib.errors import ValidationFailed
from chalicelib.gateways.ports import parse_port

log = logging.getLogger(__name__)

Lookup = Callable[[str, str], "dict | None"]  # (kind, name) -> stored document or None


@dataclass(frozen=True)
class RouteSpec:
    name: str  # the route's key: another gateway, deployment/.../port or "[host:port]"
    weight: int | None = None
    condition: Any = None  # a condition_grammar node, or None
    condition_strength: int | None = None
    rewrites: tuple[tuple[str, Any], ...] = ()  # (new path, condition node)
    balance: str | None = None
    missing: tuple[str, ...] = ()  # references that named nothing stored (reported, not fatal)

    @property
    def external(self) -> tuple[str, int] | None:
        """(host, port) of a `[host:port]` route."""
        if self.name.startswith("[") and self.name.endswith("]"):
            host, _, port = self.name[1:-1].rpartition(":")
            return host, int(port)
        return None

    @property
    def gateway(self) -> str | None:
        """The gateway a 1-segment route chains to."""
        return self.name if self.external is None and "/" not in self.name else None


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    port: int | None
    mode: str = "http"  # http or tcp
    sticky: str | None = None  # route, instance or None
    virtual_hosts: tuple[str, ...] = ()
    routes: tuple[RouteSpec, ...] = field(default_factory=tuple)


def references(docs: Iterable[dict]) -> set[tuple[str, str]]:
    """(kind, name) of the stored routes, conditions and rewrites the documents refer to,
    one level deep (a stored route's own references are a second call on the routes)."""
    found: set[tuple[str, str]] = set()

    def ref(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            name = value.get("reference", value.get("ref"))
            return name if isinstance(name, str) else None
        return None

    def route_refs(route: Any) -> None:
        if not isinstance(route, dict):
            return
        cond = route.get("condition")
        if isinstance(cond, dict) and ref(cond) and "condition" not in cond:
            found.add(("conditions", ref(cond)))
        for rw in route.get("rewrites") or []:
            if isinstance(rw, dict) and "path" not in rw and ref(rw):
                found.add(("rewrites", ref(rw)))

    for doc in docs:
        if doc.get("kind") == "routes" or "routes" not in doc:
            route_refs(doc)
            continue
        for route in (doc.get("routes") or {}).values():
            if isinstance(route, dict) and ("reference" in route or "ref" in route) and len(route) == 1:
                found.add(("routes", ref(route)))
            else:
                route_refs(route)
    return found


def _route(key: str, model: Any, lookup: Lookup) -> RouteSpec:
    # pydantic: `references` above is on the cold-start path, this is not.
    from chalicelib import dsl
    from chalicelib.dsl.condition_grammar import Bool

    missing: list[str] = []
    if isinstance(model, dsl.RouteRef):
        stored = lookup("routes", model.reference)
        if stored is None:
            missing.append(f"routes/{model.reference}")
            return RouteSpec(key, missing=tuple(missing))
        model = dsl.Route.model_validate({k: v for k, v in stored.items() if k not in ("kind", "name")})
    condition = None
    if model.condition is not None:
        cond = model.condition
        if isinstance(cond, dsl.ConditionRef):
            stored = lookup("conditions", cond.reference)
            if stored is None or not isinstance(stored.get("condition"), str):
                missing.append(f"conditions/{cond.reference}")
                condition = Bool(False)  # a condition that is not there matches nothing
            else:
                condition = dsl.parse_condition(stored["condition"])
        else:
            condition = cond.tree
    rewrites = []
    for rw in model.rewrites:
        if isinstance(rw, dsl.RewriteRef):
            stored = lookup("rewrites", rw.reference)
            if stored is None or not isinstance(stored.get("path"), str):
                missing.append(f"rewrites/{rw.reference}")
                continue
            rw = dsl.Rewrite.model_validate({"path": stored["path"]})
        rewrites.append((rw.new_path, rw.condition))
    return RouteSpec(key, model.weight, condition, model.condition_strength, tuple(rewrites), model.balance,
                     tuple(missing))


def from_model(gateway: Any, lookup: Lookup) -> GatewaySpec:
    port, mode = parse_port(gateway.port) if gateway.port else (None, "http")
    routes = tuple(_route(key, route, lookup) for key, route in gateway.routes.items())
    return GatewaySpec(gateway.name, port, mode, gateway.sticky, tuple(gateway.virtual_hosts), routes)


def from_documents(docs: Iterable[dict], lookup: Lookup) -> list[GatewaySpec]:
    """Specs of stored gateway documents; one that no longer parses is left out (and logged)."""
    from chalicelib import dsl  # pydantic: only when rendering

    specs = []
    for doc in docs:
        try:
            specs.append(from_model(dsl.parse("gateways", doc), lookup))
        except (ValidationFailed, ValueError) as error:
            log.error("gateway %r left out of the configuration: %s", doc.get("name"), error)
    return specs
