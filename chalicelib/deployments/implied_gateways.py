"""The gateways a deployment implies, as gateway documents the gateway layer stores and renders.

- Internal, one per cluster port: `<deployment>/<cluster>/<port>`, one route per service being
  deployed, `<deployment>/<cluster>/<service>/<port>`, with the cluster gateway's weights,
  conditions, rewrites, sticky and virtual hosts. Its port is assigned by the gateway layer.
- External, one per blueprint gateway: `<deployment>/<port number>` on that port, routing to the
  internal gateways it names (`cluster/port` -> `<deployment>/<cluster>/<port>`).

Weights may then be changed through the gateway API (a canary release does); `absorb` takes
them back into the deployment, so a later merge starts from what HAProxy really does.
"""
from __future__ import annotations

from typing import Any

from chalicelib.deployments.model import Deployment
from chalicelib.dsl import ClusterGateway, Route
from chalicelib.gateways.ports import parse_port


def internal_name(deployment: str, cluster: str, port: str) -> str:
    return f"{deployment}/{cluster}/{port}"


def service_route(deployment: str, cluster: str, service: str, port: str) -> str:
    return f"{deployment}/{cluster}/{service}/{port}"


def external_name(deployment: str, port: str) -> str:
    return f"{deployment}/{port.split('/')[0]}"


def _route_doc(route: Any) -> dict:
    if isinstance(route, Route):
        body = route.model_dump(mode="json", exclude_none=True)
        body.pop("name", None)
        if body.get("metadata") == {}:
            body.pop("metadata")
        if not body.get("rewrites"):
            body.pop("rewrites", None)
        return body
    return {"reference": route.reference}


def documents(dep: Deployment) -> dict[str, dict]:
    """name -> gateway document (without a port for internal gateways: assigned or kept)."""
    out: dict[str, dict] = {}
    for cname, cluster in dep.clusters.items():
        for port, gateway in cluster.gateways.items():
            name = internal_name(dep.name, cname, port)
            routes = {service_route(dep.name, cname, breed, port): _route_doc(route)
                      for breed, route in gateway.routes.items()}
            out[name] = _gateway_doc(dep, name, gateway, routes)
    for port, gateway in dep.gateways.items():
        name = external_name(dep.name, port)
        routes = {}
        for key, route in gateway.routes.items():
            cname, _, pname = key.partition("/")
            routes[internal_name(dep.name, cname, pname)] = _route_doc(route)
        out[name] = _gateway_doc(dep, name, gateway, routes, port=port)
    return out


def _gateway_doc(dep: Deployment, name: str, gateway: Any, routes: dict, port: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "kind": "gateways", "metadata": {"deployment": dep.name}}
    if port is not None:
        doc["port"] = port
    doc["routes"] = routes
    if gateway.sticky:
        doc["sticky"] = gateway.sticky
    if gateway.virtual_hosts:
        doc["virtual_hosts"] = list(gateway.virtual_hosts)
    return doc


def absorb(dep: Deployment, stored: dict[str, dict]) -> Deployment:
    """The deployment with its cluster gateways' routes, sticky and virtual hosts as the stored
    internal gateways have them now (routes of services it does not know are ignored)."""
    dep = dep.model_copy(deep=True)
    for cname, cluster in dep.clusters.items():
        for port, gateway in list(cluster.gateways.items()):
            doc = stored.get(internal_name(dep.name, cname, port))
            if not doc:
                continue
            prefix = f"{dep.name}/{cname}/"
            routes = {}
            for key, route in (doc.get("routes") or {}).items():
                if key.startswith(prefix) and key.endswith("/" + port):
                    breed = key[len(prefix):-len(port) - 1]
                    if breed in gateway.routes:
                        routes[breed] = route
            if not routes:
                continue
            merged = ClusterGateway.model_validate({
                "sticky": doc.get("sticky"), "virtual_hosts": doc.get("virtual_hosts") or [],
                "routes": {**{b: r for b, r in gateway.routes.items() if b not in routes}, **routes}})
            ordered = {b: merged.routes[b] for b in gateway.routes}
            cluster.gateways[port] = merged.model_copy(update={"routes": ordered})
    return dep


def ports_of(stored: dict[str, dict]) -> dict[str, int]:
    """gateway name -> port number, of stored gateway documents that have one."""
    out = {}
    for name, doc in stored.items():
        if doc and doc.get("port"):
            out[name] = parse_port(doc["port"])[0]
    return out
