"""Vamp's read side of deployments: `/health/deployments/{d}[/clusters/{c}[/services/{s}]]` and
`/metrics/deployments/{d}/clusters/{c}[/services/{s}]/ports/{p}/{metric}`, from the agents' metric
events (gateways/telemetry.py: the same figures the `health` built-in workflow publishes).

Health: 0 if any request to the service's routes ended in a 5xx within the window (or no gateway
node reports), else 1, multiplied up the hierarchy. Metrics: the cluster port's internal gateway
`<d>/<c>/<p>`, a service's from its route `<d>/<c>/<s>/<p>` in that gateway."""
from __future__ import annotations

import time

from chalicelib.api.backends import artifact_store, node_store
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.errors import FieldError, NotFound
from chalicelib.gateways import nodes, telemetry
from chalicelib.settings import settings
from chalicelib.store.event_backend import event_store


def _deployment(call: Call, name: str) -> dict:
    stored = artifact_store().get(call.namespace, "deployments", name)
    if stored is None:
        raise NotFound(f"deployment {name} not found", [FieldError("deployment", "no such deployment")])
    return stored.document


def _cluster(document: dict, deployment: str, cluster: str) -> dict:
    found = (document.get("clusters") or {}).get(cluster)
    if found is None:
        raise NotFound(f"deployment {deployment} has no cluster {cluster}", [FieldError("cluster", "no such cluster")])
    return found


def _service(cluster_doc: dict, deployment: str, cluster: str, service: str) -> None:
    if service not in {telemetry.breed_name(s) for s in cluster_doc.get("services") or []}:
        raise NotFound(f"cluster {deployment}/{cluster} has no service {service}",
                       [FieldError("service", "no such service")])


def deployment_health(call: Call, deployment: str, cluster: str | None = None, service: str | None = None) -> Reply:
    deployment = decoded_name(deployment)
    cluster, service = (decoded_name(cluster) if cluster else None), (decoded_name(service) if service else None)
    window = telemetry.window_seconds(call.query.get("window"))
    store, s = artifact_store(), settings()
    document = _deployment(call, deployment)
    if cluster is not None:
        cluster_doc = _cluster(document, deployment, cluster)
        if service is not None:
            _service(cluster_doc, deployment, cluster, service)
    figures = telemetry.Figures(event_store(), call.namespace, window, s.per_page_max)
    views, generation = nodes.read(node_store(), store, call.namespace, time.time(), s.node_silent_after)
    liveness = nodes.liveness(views, generation)
    routes_health = {}
    for g in store.all_of_kind(call.namespace, "gateways"):  # every gateway routing to the deployment's services
        for route in g.document.get("routes") or {}:
            if (telemetry.service_of(route) or ("",))[0] == deployment:
                routes_health[(g.name, route)] = telemetry.health(figures.values(g.name, route, "errors"), liveness)
    tree = telemetry.deployment_health(deployment, document, telemetry.services_health(routes_health))
    if not routes_health:  # no route yet: as the gateway form, no reporting node is no evidence of health
        value, reason = telemetry.health([], liveness)
        if value == 0:
            tree = {**tree, "value": 0, "reason": reason}
    if cluster is not None:
        tree = tree["clusters"][cluster]
        if service is not None:
            tree = tree["services"][service]
    body = {"value": tree["value"], "window": window}
    return Reply(200, body if "reason" not in tree else {**body, "reason": tree["reason"]})


def deployment_metric(call: Call, deployment: str, cluster: str, port: str, metric: str,
                      service: str | None = None) -> Reply:
    deployment, cluster, port = decoded_name(deployment), decoded_name(cluster), decoded_name(port)
    service = decoded_name(service) if service else None
    metric = telemetry.metric_name(metric)
    window = telemetry.window_seconds(call.query.get("window"))
    document = _deployment(call, deployment)
    cluster_doc = _cluster(document, deployment, cluster)
    if service is not None:
        _service(cluster_doc, deployment, cluster, service)
    if port not in telemetry.cluster_ports(document, cluster):
        raise NotFound(f"cluster {deployment}/{cluster} has no gateway port {port}",
                       [FieldError("port", f"one of: {', '.join(telemetry.cluster_ports(document, cluster)) or 'none'}")])
    gateway = f"{deployment}/{cluster}/{port}"  # the cluster port's internal gateway
    route = f"{deployment}/{cluster}/{service}/{port}" if service else None
    figures = telemetry.Figures(event_store(), call.namespace, window, settings().per_page_max)
    return Reply(200, {"value": figures.metric(gateway, route, metric), "window": window})
