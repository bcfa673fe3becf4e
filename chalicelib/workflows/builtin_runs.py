"""What the built-in breeds do, as Vamp's built-in workflows did (REFERENCE.md 1 and 6), from the
figures the gateway agents post (chalicelib/gateways/telemetry.py computes them: reused here).

- `metrics`: per gateway and route, `rate` and `responseTime` over the window, events tagged
  `gateways:<g>` [`routes:<r>`] `metrics:<m>`, type `metrics`;
- `health`: per gateway and route, and per deployment, cluster and service (a route's health
  counts for the service it targets, multiplied up), events tagged `gateways:<g>` [`routes:<r>`]
  or `deployments:<d>` [`clusters:<c>` [`services:<s>`]] and `health`, type `health`;
- `allocation`: per deployment, instances, cpu x instances, memory (MB) x instances, events tagged
  `deployments:<d>` `allocation`, type `allocation`.
Each returns the events it made and log lines; the caller publishes them."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.gateways import nodes, telemetry
from chalicelib.settings import settings
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.store.event_store import EventQuery, from_agents, new_event

WINDOW = telemetry.DEFAULT_WINDOW  # seconds, as the API's health and metrics default

# Writes a gateway document through the API's write path (validation, ports, the HAProxy
# configuration published): given by the handler layer, which may reach it (decision 0016).
GatewayWriter = Callable[[str, dict, int], None]  # (namespace, document, expected version)


@dataclass(frozen=True)
class Run:
    store: ArtifactStore
    events: object  # the event store
    nodes: object  # the node store
    namespace: str
    environment: dict = field(default_factory=dict)  # the workflow's environment_variables
    write_gateway: GatewayWriter | None = None


class Figures:
    """The agents' metric events of a namespace over the window, read once per metric and gateway."""

    def __init__(self, events, namespace: str, window: int):
        self._events, self._namespace, self.window = events, namespace, window
        self._since = datetime.now(timezone.utc) - timedelta(seconds=window)
        self._cache: dict[tuple[str, str], list[dict]] = {}

    def values(self, gateway: str, route: str | None, metric: str) -> list[float]:
        key = (gateway, metric)
        if key not in self._cache:
            query = EventQuery(tags=telemetry.tags_for(gateway, None, metric), type="metrics", gte=self._since,
                               per_page=settings().per_page_max)
            self._cache[key] = from_agents(self._events.query(self._namespace, query).items)
        events = self._cache[key]
        if route is not None:
            events = [e for e in events if f"routes:{route}" in e.get("tags", ())]
        return telemetry.own_values(events, route)


def _gateways(store: ArtifactStore, namespace: str) -> list[tuple[str, list[str]]]:
    out = []
    for g in store.all_of_kind(namespace, "gateways"):
        routes = g.document.get("routes") or {}
        out.append((g.name, sorted(routes) if isinstance(routes, dict) else []))
    return out


def metrics(run: "Run") -> tuple[list[dict], list[str]]:
    store, events, namespace = run.store, run.events, run.namespace
    figures = Figures(events, namespace, WINDOW)
    out, log = [], []
    for gateway, routes in _gateways(store, namespace):
        for route in [None, *routes]:
            requests = figures.values(gateway, route, "requests")
            rate = telemetry.metric_value("rate", requests, requests, WINDOW)
            response = telemetry.metric_value("responseTime", figures.values(gateway, route, "responseTime"),
                                              requests, WINDOW)
            base = [f"gateways:{gateway}"] + ([f"routes:{route}"] if route else [])
            out.append(new_event(base + ["metrics:rate"], rate, type="metrics"))
            out.append(new_event(base + ["metrics:responseTime"], response, type="metrics"))
            log.append(f"{gateway}{' ' + route if route else ''}: rate {rate:.3f}/s, responseTime {response}")
    return out, log


def health(run: "Run") -> tuple[list[dict], list[str]]:
    store, events, node_store, namespace = run.store, run.events, run.nodes, run.namespace
    figures = Figures(events, namespace, WINDOW)
    views, generation = nodes.read(node_store, store, namespace, time.time(), settings().node_silent_after)
    liveness = nodes.liveness(views, generation)
    out, log = [], []
    services: dict[tuple[str, str, str], int] = {}  # (deployment, cluster, service) -> health of its routes
    for gateway, routes in _gateways(store, namespace):
        for route in [None, *routes]:
            value, reason = telemetry.health(figures.values(gateway, route, "errors"), liveness)
            tags = [f"gateways:{gateway}"] + ([f"routes:{route}"] if route else []) + ["health"]
            out.append(new_event(tags, value, type="health"))
            log.append(f"{gateway}{' ' + route if route else ''}: health {value}{' (' + reason + ')' if reason else ''}")
            parts = route.split("/") if route else []
            if len(parts) == 4:  # a deployment's route: <deployment>/<cluster>/<service>/<port>
                key = (parts[0], parts[1], parts[2])
                services[key] = services.get(key, 1) * value
    for d in store.all_of_kind(namespace, "deployments"):
        deployment_health = 1
        for cluster_name, cluster in (d.document.get("clusters") or {}).items():
            cluster_health = 1
            for service in cluster.get("services") or []:
                breed = service.get("breed") or {}
                name = breed.get("name") if isinstance(breed, dict) else None
                value = services.get((d.name, cluster_name, name), 1)
                cluster_health *= value
                out.append(new_event([f"deployments:{d.name}", f"clusters:{cluster_name}", f"services:{name}",
                                      "health"], value, type="health"))
            deployment_health *= cluster_health
            out.append(new_event([f"deployments:{d.name}", f"clusters:{cluster_name}", "health"], cluster_health,
                                 type="health"))
        out.append(new_event([f"deployments:{d.name}", "health"], deployment_health, type="health"))
        log.append(f"deployment {d.name}: health {deployment_health}")
    return out, log


def allocation(run: "Run") -> tuple[list[dict], list[str]]:
    store, namespace = run.store, run.namespace
    from chalicelib.dsl.units import parse_memory

    out, log = [], []
    for d in store.all_of_kind(namespace, "deployments"):
        instances, cpu, memory = 0, 0.0, 0.0
        for cluster in (d.document.get("clusters") or {}).values():
            for service in cluster.get("services") or []:
                scale = service.get("scale") or {}
                n = int(scale.get("instances", 1))
                instances += n
                cpu += float(scale.get("cpu", 0)) * n
                memory += float(parse_memory(scale.get("memory", 0))) * n
        value = {"instances": instances, "cpu": round(cpu, 6), "memory": round(memory, 3)}
        out.append(new_event([f"deployments:{d.name}", "allocation"], value, type="allocation"))
        log.append(f"deployment {d.name}: {instances} instances, cpu {cpu:g}, memory {memory:g} MB")
    return out, log


# --- canary: Vamp's "automate a canary release" recipe (REFERENCE.md 6) ---------------------
CANARY_STEP, CANARY_WINDOW = 5, 30  # points per run, seconds of errors looked at


def _int_env(environment: dict, key: str, default: int, low: int, high: int) -> int:
    raw = environment.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
        if low <= value <= high:
            return value
    except ValueError:
        pass
    raise ValidationFailed.at(f"environment_variables.{key}", f"an integer from {low} to {high}")


def canary_settings(environment: dict) -> tuple[str, str, str, int, int]:
    """(gateway, from route, to route, step, window) from the workflow's environment variables
    VAMP_GATEWAY, VAMP_CANARY_FROM, VAMP_CANARY_TO, VAMP_CANARY_STEP (5), VAMP_CANARY_WINDOW (30 s)."""
    missing = [k for k in ("VAMP_GATEWAY", "VAMP_CANARY_FROM", "VAMP_CANARY_TO") if not environment.get(k)]
    if missing:
        raise ValidationFailed("Invalid input", [FieldError(f"environment_variables.{k}", "the canary built-in needs it")
                                                 for k in missing])
    return (str(environment["VAMP_GATEWAY"]), str(environment["VAMP_CANARY_FROM"]), str(environment["VAMP_CANARY_TO"]),
            _int_env(environment, "VAMP_CANARY_STEP", CANARY_STEP, 1, 100),
            _int_env(environment, "VAMP_CANARY_WINDOW", CANARY_WINDOW, 1, telemetry.MAX_WINDOW))


def _weight(route: dict) -> int:
    text = str(route.get("weight") or "0%").strip().rstrip("%")
    return int(float(text))


def canary(run: Run) -> tuple[list[dict], list[str]]:
    """Every run: any 5xx on the gateway within the window rolls back to 100/0; otherwise `step`
    points move from the old route to the new, the gateway written through the API's path."""
    gateway, old, new, step, window = canary_settings(run.environment)
    if run.write_gateway is None:
        raise RuntimeError("no gateway writer in this process")
    stored = run.store.get(run.namespace, "gateways", gateway)
    if stored is None:
        raise ValueError(f"gateway {gateway!r} does not exist")
    routes = stored.document.get("routes") or {}
    if old not in routes or new not in routes:
        raise ValueError(f"gateway {gateway!r} has no route {old if old not in routes else new!r}")
    errors = sum(Figures(run.events, run.namespace, window).values(gateway, None, "errors"))
    before = (_weight(routes[old]), _weight(routes[new]))
    if errors > 0:
        after, action = (100, 0), "rollback"
    else:
        moved = min(step, before[0])
        after, action = (before[0] - moved, before[1] + moved), "step" if moved else "done"
    value = {"gateway": gateway, "from": old, "to": new, "errors": errors, "window": window,
             "before": list(before), "after": list(after), "action": action}
    if after != before:
        document = {**stored.document, "routes": {**routes, old: {**routes[old], "weight": f"{after[0]}%"},
                                                  new: {**routes[new], "weight": f"{after[1]}%"}}}
        run.write_gateway(run.namespace, document, stored.version)
    line = f"{gateway}: {errors:g} 5xx in {window} s, {old} {before[0]}% -> {after[0]}%, {new} {before[1]}% -> {after[1]}%"
    return [new_event([f"gateways:{gateway}", "canary", f"canary:{action}"], value, type="canary")], [line]


RUNS = {"metrics": metrics, "health": health, "allocation": allocation, "canary": canary}
