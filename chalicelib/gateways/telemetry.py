"""Health and metrics of gateways and routes, from the metric events gateway agents post.

Every agent posts, per 10 s window, events of type `metrics` tagged `gateways:<g>`,
`metrics:<m>` (and `routes:<r>` for a route's own figures) with a number as value, m one of
requests, errors (5xx), rate, p50, p95, p99, responseTime (mean total time, ms). Several agents
(one per node) each post their own, so counts add up across them.
"""
from __future__ import annotations

from chalicelib.errors import FieldError, NotFound, ValidationFailed
from chalicelib.gateways.nodes import Liveness

METRICS = ("requests", "errors", "rate", "responseTime", "p50", "p95", "p99")
DEFAULT_WINDOW = 60
MAX_WINDOW = 86_400


def window_seconds(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_WINDOW
    try:
        value = int(raw)
        if 1 <= value <= MAX_WINDOW:
            return value
    except ValueError:
        pass
    raise ValidationFailed.at("window", f"seconds, an integer from 1 to {MAX_WINDOW}")


def metric_name(raw: str) -> str:
    if raw not in METRICS:
        raise NotFound(f"unknown metric {raw}", [FieldError("metric", f"one of {', '.join(METRICS)}")])
    return raw


def tags_for(gateway: str, route: str | None, metric: str) -> list[str]:
    tags = [f"gateways:{gateway}", f"metrics:{metric}"]
    return tags + [f"routes:{route}"] if route else tags


def own_values(events: list[dict], route: str | None) -> list[float]:
    """Numbers of the events that belong to this level: a gateway's own figures are the events
    without a route tag (the route-level ones carry the gateway tag too)."""
    out = []
    for e in events:
        has_route = any(t.startswith("routes:") for t in e.get("tags", ()))
        if route is None and has_route:
            continue
        v = e.get("value")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
    return out


def metric_value(metric: str, values: list[float], requests: list[float], window: int) -> float | None:
    """One figure over the window. Counts add up; rate is requests over the window; the mean
    time is the mean of the windows' means; a percentile is the worst window's (conservative)."""
    if metric in ("requests", "errors"):
        return sum(values)
    if metric == "rate":
        return sum(requests) / window
    if not values:
        return None
    if metric == "responseTime":
        return sum(values) / len(values)
    return max(values)


def health(errors: list[float], nodes: Liveness) -> tuple[int, str | None]:
    """Vamp's health, and why it is 0: 0 if any request ended in a 5xx within the window, or no
    gateway node reports (no agent: nobody would see the 5xx), or a node went silent; else 1."""
    if sum(errors) > 0:
        return 0, f"{sum(errors):.0f} requests ended in a 5xx"
    if nodes.silent:
        return 0, f"silent gateway nodes: {', '.join(nodes.silent)}"
    if nodes.reporting == 0:
        return 0, "no gateway node reports for the namespace"
    return 1, None


# -- per deployment, cluster and service (Vamp's /health/deployments, /metrics/deployments) ----
# One implementation for the API's read side and the `health` built-in workflow (0039, 0042).

class Figures:
    """The agents' metric events of a namespace over the window, read once per gateway and metric
    (a route's figures are filtered out of its gateway's events)."""

    def __init__(self, events, namespace: str, window: int, per_page: int):
        from datetime import datetime, timedelta, timezone

        self._events, self._namespace, self.window, self._per_page = events, namespace, window, per_page
        self._since = datetime.now(timezone.utc) - timedelta(seconds=window)
        self._cache: dict[tuple[str, str], list[dict]] = {}

    def values(self, gateway: str, route: str | None, metric: str) -> list[float]:
        # The event store's interface imports pydantic: off the API's cold-start path.
        from chalicelib.store.event_store import EventQuery, from_agents

        key = (gateway, metric)
        if key not in self._cache:
            query = EventQuery(tags=tags_for(gateway, None, metric), type="metrics", gte=self._since,
                               per_page=self._per_page)
            self._cache[key] = from_agents(self._events.query(self._namespace, query).items)  # 0022
        events = self._cache[key]
        if route is not None:
            events = [e for e in events if f"routes:{route}" in e.get("tags", ())]
        return own_values(events, route)

    def metric(self, gateway: str, route: str | None, metric: str) -> float | None:
        values = self.values(gateway, route, metric)
        requests = self.values(gateway, route, "requests") if metric == "rate" else values
        return metric_value(metric, values, requests, self.window)


def service_of(route: str) -> tuple[str, str, str] | None:
    """(deployment, cluster, service) a deployment route `<d>/<c>/<s>/<port>` targets."""
    parts = route.split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) == 4 else None


Health = tuple[int, "str | None"]  # Vamp's 0 or 1, and why it is 0


def services_health(route_health: dict[tuple[str, str], Health]) -> dict[tuple[str, str, str], Health]:
    """Each deployment service's health from the routes targeting it, whichever gateway holds them
    (the cluster's internal gateways `<d>/<c>/<port>`, and any gateway routing to the service):
    the product of their healths. `route_health`: (gateway, route) -> health."""
    out: dict[tuple[str, str, str], Health] = {}
    for (gateway, route), (value, reason) in sorted(route_health.items()):
        key = service_of(route)
        if key is None:
            continue
        before, why = out.get(key, (1, None))
        out[key] = (before * value, why or (f"{gateway} {route}: {reason}" if value == 0 else None))
    return out


def breed_name(service: dict) -> str | None:
    breed = service.get("breed") or {}
    name = (breed.get("name") or breed.get("reference")) if isinstance(breed, dict) else None
    return name if isinstance(name, str) else None


def deployment_health(name: str, document: dict, services: dict[tuple[str, str, str], Health]) -> dict:
    """{"value", "reason"?, "clusters": {c: {"value", "reason"?, "services": {s: {"value", "reason"?}}}}}:
    a service without telemetry is healthy; a cluster is the product of its services', the
    deployment of its clusters' (Vamp's rule: multiplied up the hierarchy)."""
    def node(value: int, reason: str | None, **rest) -> dict:
        return {"value": value, **({"reason": reason} if reason else {}), **rest}

    clusters, total, why = {}, 1, None
    for cname, cluster in (document.get("clusters") or {}).items():
        members, value, reason = {}, 1, None
        for service in (cluster or {}).get("services") or []:
            sname = breed_name(service)
            if sname is None:
                continue
            v, r = services.get((name, cname, sname), (1, None))
            members[sname] = node(v, r)
            value, reason = value * v, reason or r
        clusters[cname] = node(value, reason, services=members)
        total, why = total * value, why or reason
    return node(total, why, clusters=clusters)


def cluster_ports(document: dict, cluster: str) -> list[str]:
    """The cluster's gateway ports: one internal gateway `<d>/<cluster>/<port>` each."""
    gateways = ((document.get("clusters") or {}).get(cluster) or {}).get("gateways") or {}
    return list(gateways) if isinstance(gateways, dict) else []
