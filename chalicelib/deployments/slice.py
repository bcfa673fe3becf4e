"""DELETE of a blueprint from a deployment (or PUT ?delete=true): the services it lists are
marked for undeployment and their routes dropped; what remains on each port is scaled to 100%.
A cluster left without services being deployed loses its gateways, and blueprint gateways
routing to it go too. Synchronisation removes what is undeployed (`prune`); a deployment
without clusters disappears.
"""
from __future__ import annotations

from typing import Any

from chalicelib.deployments.merge import route_gateways
from chalicelib.deployments.model import Deployment, new_status


def slice_(deployment: Deployment, selection: dict[str, list[str] | None] | None, now: str) -> Deployment:
    """`selection`: cluster -> breed names (None: every service of the cluster); None: everything."""
    dep = deployment.model_copy(deep=True)
    for cname, cluster in dep.clusters.items():
        if selection is not None and cname not in selection:
            continue
        names = None if selection is None else selection[cname]
        touched = False
        for service in cluster.services:
            if (names is None or service.name in names) and service.deploying:
                service.status = new_status(now, "undeployment")
                touched = True
        if touched:
            route_gateways(cluster, rescale=True)
    for port in list(dep.gateways):
        routes = dep.gateways[port].routes
        if any(not _serves(dep, key) for key in routes):
            del dep.gateways[port]
    return dep


def _serves(dep: Deployment, route_key: str) -> bool:
    cname, _, port = route_key.partition("/")
    cluster = dep.clusters.get(cname)
    return cluster is not None and port in cluster.ports()


def selection_of(blueprint: Any) -> dict[str, list[str]]:
    """What a (parsed) blueprint names: cluster -> breed names."""
    return {cname: [s.breed_name for s in cluster.services] for cname, cluster in blueprint.clusters.items()}


def prune(deployment: Deployment) -> Deployment | None:
    """Without the services whose undeployment is done and the clusters left empty; None when no
    cluster is left."""
    dep = deployment.model_copy(deep=True)
    for cname in list(dep.clusters):
        cluster = dep.clusters[cname]
        cluster.services = [s for s in cluster.services if s.deploying or s.status.phase.name != "done"]
        if not cluster.services:
            del dep.clusters[cname]
    return dep if dep.clusters else None
