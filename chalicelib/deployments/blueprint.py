"""`as_blueprint`: a deployment shown as the blueprint that would deploy it as it is now
(services being deployed only; breeds by reference, as they are stored as breeds)."""
from __future__ import annotations

from chalicelib import dsl
from chalicelib.deployments.model import Deployment


def as_blueprint(dep: Deployment) -> dict:
    clusters = {}
    for cname, cluster in dep.clusters.items():
        services = []
        for s in cluster.services:
            if not s.deploying:
                continue
            body = {"breed": s.name, "scale": s.scale.model_dump(mode="json", exclude_none=True)}
            body["scale"].pop("metadata", None)
            if s.environment_variables:
                body["environment_variables"] = s.environment_variables
            if s.arguments:
                body["arguments"] = s.arguments
            if s.health_checks is not None:
                body["health_checks"] = [h.model_dump(mode="json") for h in s.health_checks]
            if s.network:
                body["network"] = s.network
            if s.dialects:
                body["dialects"] = s.dialects
            services.append(body)
        if not services:
            continue
        out = {"services": services}
        dumped = cluster.model_dump(mode="json", exclude_none=True, include={"gateways", "sla", "health_checks",
                                                                            "network", "dialects"})
        out.update({k: v for k, v in dumped.items() if v not in ({}, [], None)})
        clusters[cname] = out
    doc = {"name": dep.name, "kind": "blueprints", "metadata": dict(dep.metadata), "clusters": clusters}
    live = set(clusters)
    gateways = {p: g.model_dump(mode="json", exclude_none=True) for p, g in dep.gateways.items()
                if all(k.split("/")[0] in live for k in g.routes)}
    if gateways:
        doc["gateways"] = gateways
    env = {k: v for k, v in dep.environment_variables.items() if k.split(".")[0] in live}
    if env:
        doc["environment_variables"] = env
    if dep.dialects:
        doc["dialects"] = dep.dialects
    if not clusters:
        return doc
    return dsl.dump(dsl.parse("blueprints", doc))
