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

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.gateways import nodes, telemetry
from chalicelib.settings import settings
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.store.event_store import new_event

WINDOW = telemetry.DEFAULT_WINDOW  # seconds, as the API's health and metrics default

@dataclass(frozen=True)
class Writers:
    """What the built-ins change, through the API's own paths, handed in by the handler layer
    (app.py, the API's routes), which may reach them (decision 0016): the domain's workflows
    package may not import the artifact and deployment paths that call into it."""

    # (namespace, gateway document, expected version): validated, ports, HAProxy config published
    write_gateway: Callable[[str, dict, int], None] | None = None
    # (namespace, deployment, cluster, service, instances): the scale PUT, then synchronised
    scale_service: Callable[[str, str, str, str, int], None] | None = None
    # (namespace, gateway) -> the release holding it, or None
    releasing: Callable[[str, str], str | None] | None = None


@dataclass(frozen=True)
class Run:
    store: ArtifactStore
    events: object  # the event store
    nodes: object  # the node store
    namespace: str
    environment: dict = field(default_factory=dict)  # the workflow's environment_variables
    writers: Writers = field(default_factory=Writers)


def Figures(events, namespace: str, window: int) -> telemetry.Figures:
    """The agents' metric events over the window (gateways/telemetry.py: the API's read side too)."""
    return telemetry.Figures(events, namespace, window, settings().per_page_max)


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
    routes_health: dict[tuple[str, str], telemetry.Health] = {}
    for gateway, routes in _gateways(store, namespace):
        for route in [None, *routes]:
            value, reason = telemetry.health(figures.values(gateway, route, "errors"), liveness)
            tags = [f"gateways:{gateway}"] + ([f"routes:{route}"] if route else []) + ["health"]
            out.append(new_event(tags, value, type="health"))
            log.append(f"{gateway}{' ' + route if route else ''}: health {value}{' (' + reason + ')' if reason else ''}")
            if route is not None:
                routes_health[(gateway, route)] = (value, reason)
    services = telemetry.services_health(routes_health)
    for d in store.all_of_kind(namespace, "deployments"):
        tree = telemetry.deployment_health(d.name, d.document, services)  # as GET /health/deployments answers
        for cluster_name, cluster in tree["clusters"].items():
            for name, service in cluster["services"].items():
                out.append(new_event([f"deployments:{d.name}", f"clusters:{cluster_name}", f"services:{name}",
                                      "health"], service["value"], type="health"))
            out.append(new_event([f"deployments:{d.name}", f"clusters:{cluster_name}", "health"], cluster["value"],
                                 type="health"))
        out.append(new_event([f"deployments:{d.name}", "health"], tree["value"], type="health"))
        log.append(f"deployment {d.name}: health {tree['value']}")
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
    if run.writers.write_gateway is None:
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
        run.writers.write_gateway(run.namespace, document, stored.version)
    line = f"{gateway}: {errors:g} 5xx in {window} s, {old} {before[0]}% -> {after[0]}%, {new} {before[1]}% -> {after[1]}%"
    return [new_event([f"gateways:{gateway}", "canary", f"canary:{action}"], value, type="canary")], [line]


# --- autoscale: instances from each route's share of the request rate ------------------------

def autoscale_settings(environment: dict) -> tuple[str, int, int, int]:
    """(gateway, minimum, maximum, window) from VAMP_GATEWAY, VAMP_AUTOSCALE_MINIMUM (1),
    VAMP_AUTOSCALE_MAXIMUM (10), VAMP_AUTOSCALE_WINDOW (60 s)."""
    if not environment.get("VAMP_GATEWAY"):
        raise ValidationFailed.at("environment_variables.VAMP_GATEWAY", "the autoscale built-in needs it")
    low = _int_env(environment, "VAMP_AUTOSCALE_MINIMUM", 1, 0, 1000)
    high = _int_env(environment, "VAMP_AUTOSCALE_MAXIMUM", 10, 1, 1000)
    if high < low:
        raise ValidationFailed.at("environment_variables.VAMP_AUTOSCALE_MAXIMUM", "at least the minimum")
    return str(environment["VAMP_GATEWAY"]), low, high, _int_env(environment, "VAMP_AUTOSCALE_WINDOW", WINDOW, 1,
                                                                  telemetry.MAX_WINDOW)


def instances_for(shares: dict[str, float], low: int, high: int) -> dict[str, int]:
    """Each service's instances: its share of the requests times the maximum, rounded up, kept
    between the minimum and the maximum. Pure."""
    return {key: max(low, min(high, math.ceil(share * high - 1e-9))) for key, share in shares.items()}


def autoscale(run: Run) -> tuple[list[dict], list[str]]:
    """The services a gateway's deployment routes (<deployment>/<cluster>/<service>/<port>) reach,
    scaled by their share of its requests over the window. Never while a release holds the
    gateway: a canary's partial traffic is not a service's load (issue 14)."""
    gateway, low, high, window = autoscale_settings(run.environment)
    if run.writers.scale_service is None:
        raise RuntimeError("no scale writer in this process")
    holder = run.writers.releasing(run.namespace, gateway) if run.writers.releasing else None
    if holder is not None:
        value = {"gateway": gateway, "action": "held", "release": holder}
        return ([new_event([f"gateways:{gateway}", "autoscale", "autoscale:held"], value, type="autoscale")],
                [f"{gateway}: release {holder} runs on it, no scaling"])
    stored = run.store.get(run.namespace, "gateways", gateway)
    if stored is None:
        raise ValueError(f"gateway {gateway!r} does not exist")
    figures = Figures(run.events, run.namespace, window)
    requests = {}
    for route in stored.document.get("routes") or {}:
        parts = route.split("/")
        if len(parts) == 4:
            requests[tuple(parts[:3])] = requests.get(tuple(parts[:3]), 0.0) + sum(figures.values(gateway, route, "requests"))
    total = sum(requests.values())
    if total <= 0:
        return [], [f"{gateway}: no requests in {window} s, no scaling"]
    wanted = instances_for({k: v / total for k, v in requests.items()}, low, high)
    out, log = [], []
    for (deployment, cluster, service), instances in sorted(wanted.items()):
        run.writers.scale_service(run.namespace, deployment, cluster, service, instances)
        share = requests[(deployment, cluster, service)] / total
        value = {"gateway": gateway, "deployment": deployment, "cluster": cluster, "service": service,
                 "share": round(share, 4), "requests": requests[(deployment, cluster, service)], "window": window,
                 "instances": instances, "minimum": low, "maximum": high}
        out.append(new_event([f"gateways:{gateway}", f"deployments:{deployment}", f"clusters:{cluster}",
                              f"services:{service}", "autoscale"], value, type="autoscale"))
        log.append(f"{deployment}/{cluster}/{service}: {share:.0%} of {total:g} requests -> {instances} instances")
    return out, log


RUNS = {"metrics": metrics, "health": health, "allocation": allocation, "canary": canary, "autoscale": autoscale}
