"""Gateway telemetry and configuration: `/health/gateways/...`, `/metrics/gateways/...` (from the
agents' metric events) and `/vga/haproxy/<version>/configuration` (what the agents apply)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from chalicelib.api.backends import artifact_store, node_store
from chalicelib.api.http import Call, Reply, Text, decoded_name
from chalicelib.errors import FieldError, NotFound
from chalicelib.gateways import nodes, publisher, telemetry
from chalicelib.settings import settings
from chalicelib.store.event_backend import event_store


def _metric_events(call: Call, gateway: str, route: str | None, metric: str, window: int) -> list[dict]:
    # The event store's interface imports pydantic (~80 ms): off the cold-start path.
    from chalicelib.store.event_store import EventQuery, from_agents

    since = datetime.now(timezone.utc) - timedelta(seconds=window)
    query = EventQuery(tags=telemetry.tags_for(gateway, route, metric), type="metrics", gte=since,
                       per_page=settings().per_page_max)
    return from_agents(event_store().query(call.namespace, query).items)  # only what agents posted (0022)


def gateway_health(call: Call, gateway: str, route: str | None = None) -> Reply:
    gateway, route = decoded_name(gateway), decoded_name(route) if route else None
    window = telemetry.window_seconds(call.query.get("window"))
    errors = telemetry.own_values(_metric_events(call, gateway, route, "errors", window), route)
    views, generation = nodes.read(node_store(), artifact_store(), call.namespace, time.time(),
                                   settings().node_silent_after)
    value, reason = telemetry.health(errors, nodes.liveness(views, generation))
    body = {"value": value, "window": window}
    return Reply(200, body if reason is None else {**body, "reason": reason})


def gateway_metric(call: Call, gateway: str, metric: str, route: str | None = None) -> Reply:
    gateway, route = decoded_name(gateway), decoded_name(route) if route else None
    metric = telemetry.metric_name(metric)
    window = telemetry.window_seconds(call.query.get("window"))
    values = telemetry.own_values(_metric_events(call, gateway, route, metric, window), route)
    requests = values
    if metric == "rate":
        requests = telemetry.own_values(_metric_events(call, gateway, route, "requests", window), route)
    return Reply(200, {"value": telemetry.metric_value(metric, values, requests, window), "window": window})


# -- the rendered HAProxy configuration (Vamp's "vga": Vamp gateway agent) ------------------------

def gateway_configuration(call: Call, version: str) -> Reply:
    """What the agents of this namespace apply: text/plain when asked for, else
    `{"configuration": text, "generation": n}` (JSON or YAML); 404 when nothing is published."""
    s = settings()
    if not publisher.publishing(s):
        raise NotFound("gateway publishing is off (VAMP_ETCD_ENDPOINT is not set)", [FieldError("etcd", "not configured")])
    found = publisher.current(publisher.configurations(s), call.namespace, decoded_name(version))
    if found is None:
        raise NotFound(f"no HAProxy {version} configuration published for namespace {call.namespace}",
                       [FieldError("version", "nothing published")])
    text, generation = found
    accept = (call.header("accept") or "").split(",")[0].split(";")[0].strip().lower()
    if accept in ("text/plain", "text/*"):
        return Reply(200, Text(text), {"X-Vamp-Generation": str(generation)})
    return Reply(200, {"configuration": text, "generation": generation})
