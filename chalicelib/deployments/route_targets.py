"""The gateway renderer's instances for deployment routes (haproxy.Options.instances).

- `<deployment>/<cluster>/<service>/<port>` (a route of an internal gateway): the service's
  healthy instances as synchronisation last saw them, on that port.
- `<deployment>/<cluster>/<port>` (a route of an external gateway): the internal gateway's
  frontend on loopback (the gateways chain, as in Vamp).
Built from one consistent read of the namespace's deployments, next to the gateway snapshot.
"""
from __future__ import annotations

from typing import Any

from chalicelib.gateways.ports import parse_port


def source(store, namespace: str, gateway_docs: list[dict], loopback: str):
    """The `publisher.RouteTargets` the layers above pass to the gateway layer."""
    # The deployment model and the renderer are pydantic: the API passes `source` on every
    # gateway write and imports this module at cold start; they are loaded only when rendering.
    from chalicelib.deployments.implied_gateways import service_route
    from chalicelib.deployments.model import load
    from chalicelib.gateways.haproxy import Instance

    table: dict[str, list[Any]] = {}
    for stored in store.all_of_kind(namespace, "deployments"):
        try:
            dep = load(stored.document)
        except ValueError:
            continue
        for cname, _, s in dep.services():
            if not s.deploying:
                continue
            for pname, port in s.breed.ports.items():
                fallback = int(port.split("/")[0])
                table[service_route(dep.name, cname, s.name, pname)] = [
                    Instance(i.name, i.host, i.ports.get(pname, fallback)) for i in s.instances if i.healthy]
    ports = {}
    for doc in gateway_docs:
        if doc.get("port") and doc.get("name", "").count("/") == 2:
            ports[doc["name"]] = parse_port(doc["port"])[0]

    def instances(gateway, route) -> list:
        if route.name in table:
            return table[route.name]
        if route.name in ports:
            return [Instance("gw-" + route.name.replace("/", "_").replace(":", "_"), loopback, ports[route.name])]
        return []

    return instances
