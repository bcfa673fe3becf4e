"""Gateway and route: an HAProxy entry point and its weighted, conditional routes."""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, model_validator

from .balance import parse as parse_balance
from .base import (
    Artifact,
    ListOf,
    Model,
    Problems,
    Ref,
    SafeText,
    as_dict,
    at_most_items,
    ref_or,
)
from .condition import ConditionOrRef
from .names import check_gateway_name
from .rewrite import RewriteOrRef
from .selector import check_selector
from .units import Percent, Port, port_type
from .weights import effective_weights as fill_weights  # Vamp's weight defaults, one place (the renderer uses them too)

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-_]*[A-Za-z0-9])?$")
_VIRTUAL_HOST_RE = re.compile(r"^[A-Za-z0-9*]([A-Za-z0-9.\-_*]*[A-Za-z0-9])?(:\d{1,5})?$")
_EXTERNAL_RE = re.compile(r"^\[([^\[\]:]+):(\d{1,5})\]$")


def _host(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _HOST_RE.fullmatch(value):
        raise ValueError(f"invalid host {value!r}")
    return value


def _virtual_host(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _VIRTUAL_HOST_RE.fullmatch(value):
        raise ValueError(f"invalid virtual host {value!r}")
    return value


def _balance(value: Any) -> str:
    """HAProxy's own grammar (balance.py): `uri depth` without a number used to pass here and
    then fail `haproxy -c`, which froze every gateway of the namespace on the nodes."""
    try:
        return parse_balance(value)
    except ValueError as error:
        raise ValueError(f"invalid balance {value!r}: {error}") from None


def _selector(value: Any) -> Any:
    """`selector: ""` (or `~`) is no selector, as in Vamp; anything else is its grammar."""
    if value is None or value == "":
        return None
    return check_selector(value)


def _sticky(value: Any) -> Any:
    return None if isinstance(value, str) and value.lower() == "none" else value


def check_route_key(key: Any) -> str:
    """1 segment: another gateway; `deployment/port`; `deployment/cluster/port`;
    `deployment/cluster/service/port`; `[host:port]`: an external target."""
    if isinstance(key, str) and key.startswith("["):
        m = _EXTERNAL_RE.fullmatch(key)
        if not m or not 1 <= int(m.group(2)) <= 65535:
            raise ValueError(f"invalid external route {key!r}: `[host:port]`")
        _host(m.group(1))
        return key
    try:
        return check_gateway_name(key)
    except ValueError:
        raise ValueError(
            f"invalid route {key!r}: a gateway, deployment/port, deployment/cluster/port, "
            "deployment/cluster/service/port or [host:port]"
        ) from None


# What one gateway may hold (docs/decisions/0024): every route is a backend and a rule of the
# namespace's one configuration, every rewrite and virtual host a line of it.
MAX_ROUTES = 64
MAX_VIRTUAL_HOSTS = 32
MAX_REWRITES = 16

Host = Annotated[str, AfterValidator(_host)]
VirtualHosts = ListOf(Annotated[str, AfterValidator(_virtual_host)], at_most=MAX_VIRTUAL_HOSTS)
Balance = Annotated[str, AfterValidator(_balance)]
Selector = Annotated[SafeText | None, BeforeValidator(_selector)]
Sticky = Annotated[Literal["route", "instance"] | None, BeforeValidator(_sticky)]


class Route(Artifact):
    """`condition_strength` defaults to 100% with a condition, else 0%; `weight` stays unset
    (None) until given: unassigned routes share what is left (see `fill_weights`)."""

    kind: ClassVar[str] = "routes"
    weight: Percent | None = None
    condition: ConditionOrRef | None = None
    condition_strength: Percent | None = None
    rewrites: ListOf(RewriteOrRef, at_most=MAX_REWRITES) = []
    balance: Balance | None = None
    selector: Selector = None

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        """`~` is a route with nothing set; an empty condition (`""`, `{condition: ""}`) is no
        condition, as Vamp's RouteReader reads it."""
        if data is None:
            return {}
        if isinstance(data, dict) and "condition" in data:
            condition = data["condition"]
            if (isinstance(condition, str) and not condition.strip()) or (
                    isinstance(condition, dict) and set(condition) <= {"condition", "name", "metadata"}
                    and isinstance(condition.get("condition"), str) and not condition["condition"].strip()):
                data = {k: v for k, v in data.items() if k != "condition"}
        return data

    @model_validator(mode="after")
    def _defaults(self) -> "Route":
        if self.condition_strength is None:
            self.condition_strength = 0 if self.condition is None else 100
        return self


class RouteRef(Ref):
    kind: ClassVar[str] = "routes"


def _is_route_reference(value: Any) -> bool:
    return isinstance(value, (str, RouteRef)) or (
        isinstance(value, dict) and len(value) == 1 and ("ref" in value or "reference" in value)
    )


RouteOrRef = ref_or(RouteRef, Route, _is_route_reference)


def _routes_shorthand(value: Any) -> Any:
    """`~` is no routes; a list of route keys (or one-key maps) becomes a map."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, dict):
        return as_dict(value)
    if isinstance(value, list):
        routes: dict = {}
        for item in value:
            if isinstance(item, dict):
                routes.update(item)
            else:
                routes[item] = {}
        return routes
    return value


Routes = Annotated[
    dict[Annotated[str, BeforeValidator(check_route_key)], RouteOrRef], BeforeValidator(_routes_shorthand),
    BeforeValidator(at_most_items(MAX_ROUTES, "routes")),
]


def route_problems(routes: dict, problems: Problems, path: tuple) -> None:
    """A route in a gateway is a reference or an inline definition, not both (a `name` with
    more: Vamp's EitherReferenceOrAnonymous); a route's selector is for a route to one
    gateway by name (Vamp's RouteSelectorOnlyRouteError, RouteSelectorExternalTargetError)."""
    for key, route in routes.items():
        if not isinstance(route, Route):
            continue
        if route.name is not None:
            problems.add((*path, key, "name"), "a route is a reference or an inline route, not both: "
                                               "drop `name`, or give only `reference`")
        if route.selector is not None and (key.startswith("[") or "/" in key):
            problems.add((*path, key, "selector"), "a selector is only for a route to one gateway by name")


def weight_problems(routes: dict, problems: Problems, path: tuple, *, exact: bool) -> None:
    """At most 100% in all; with `exact` (standalone gateways) the filled weights sum to 0 or 100."""
    weights = [r.weight if isinstance(r, Route) else None for r in routes.values()]
    given = sum(w for w in weights if w is not None)
    if given > 100:
        problems.add(path, f"route weights sum to {given}%, more than 100%")
    elif exact and sum(fill_weights(weights)) not in (0, 100):
        problems.add(path, f"route weights sum to {given}%; they must sum to 0% or 100%")


def http_only_problems(gateway: Any, problems: Problems, path: tuple, kind: str | None) -> None:
    """Conditions, rewrites and sticky need HTTP: refused on /tcp ports."""
    if kind != "tcp":
        return
    if gateway.sticky is not None:
        problems.add((*path, "sticky"), "sticky is only for /http ports")
    for key, route in gateway.routes.items():
        if isinstance(route, Route) and route.condition is not None:
            problems.add((*path, "routes", key, "condition"), "conditions are only for /http ports")
        if isinstance(route, Route) and route.rewrites:
            problems.add((*path, "routes", key, "rewrites"), "rewrites are only for /http ports")


class GatewayService(Model):
    host: Host
    port: Port


class Gateway(Artifact):
    """`port` may be left out (then assigned from 40000-45000); 3-segment names are internal."""

    kind: ClassVar[str] = "gateways"
    name: Annotated[str, BeforeValidator(check_gateway_name)] | None = None
    port: Port | None = None
    service: GatewayService | None = None
    sticky: Sticky = None
    virtual_hosts: VirtualHosts = []
    selector: Selector = None
    routes: Routes = {}
    deployed: bool = False

    @model_validator(mode="before")
    @classmethod
    def _drop_nodes(cls, data: Any) -> Any:
        """`nodes` is what GET shows of the agents (read-only): a gateway read and PUT back as it
        is must be accepted, so it is dropped, never stored (docs/decisions/0018)."""
        if isinstance(data, dict) and "nodes" in data:
            data = {k: v for k, v in data.items() if k != "nodes"}
        return data

    @model_validator(mode="after")
    def _rules(self) -> "Gateway":
        problems = Problems()
        route_problems(self.routes, problems, ("routes",))
        weight_problems(self.routes, problems, ("routes",), exact=True)
        http_only_problems(self, problems, (), port_type(self.port) if self.port else None)
        problems.check()
        return self

    @property
    def internal(self) -> bool:
        return self.name is not None and self.name.count("/") == 2

