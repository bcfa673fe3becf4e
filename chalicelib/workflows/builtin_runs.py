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
from datetime import datetime, timedelta, timezone

from chalicelib.gateways import nodes, telemetry
from chalicelib.settings import settings
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.store.event_store import EventQuery, from_agents, new_event

WINDOW = telemetry.DEFAULT_WINDOW  # seconds, as the API's health and metrics default


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


def metrics(store: ArtifactStore, events, node_store, namespace: str) -> tuple[list[dict], list[str]]:
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


def health(store: ArtifactStore, events, node_store, namespace: str) -> tuple[list[dict], list[str]]:
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


def allocation(store: ArtifactStore, events, node_store, namespace: str) -> tuple[list[dict], list[str]]:
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


RUNS = {"metrics": metrics, "health": health, "allocation": allocation}
