"""Blueprint: clusters of services (breed + scale) and the gateways in front of them.

Cluster gateways route between the services of one cluster, keyed by breed name; their port
key may be left out when the breed has one port. Until the breed is known (inline, or through
`resolve`) such a gateway is kept under the key "" (`UNRESOLVED_PORT`) and dumped in the short
form again, so nothing is guessed.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable, ClassVar, Iterator

from pydantic import BeforeValidator, ValidationInfo, model_serializer, model_validator

from .base import (
    Arguments,
    Artifact,
    Dialects,
    EnvironmentVariables,
    MapOf,
    Metadata,
    Model,
    Name,
    Problems,
    SafeText,
    as_dict,
    drop_empty_metadata,
    rename,
    rename_dialect,
    resolver,
)
from .breed import Breed, BreedOrRef, BreedRef, OptionalHealthChecks, matches, missing_trait, value_references
from .escalation import Escalation
from .gateway import Routes, Sticky, VirtualHosts, http_only_problems, route_problems, weight_problems
from .names import check_name
from .scale import ScaleOrRef
from .secrets import is_secret_reference, shows_no_secret
from .sla import Sla, SlaOrRef, SlaRef
from .units import parse_port, port_type

UNRESOLVED_PORT = ""
_GATEWAY_KEYS = {"routes", "sticky", "virtual_hosts"}
_SERVICE_KEYS = ("breed", "scale", "environment_variables", "env", "arguments")


class Service(Model):
    breed: BreedOrRef
    scale: ScaleOrRef | None = None
    environment_variables: EnvironmentVariables = {}
    arguments: Arguments = []
    health_checks: OptionalHealthChecks = None
    network: SafeText | None = None
    dialects: Dialects = {}

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"breed": data}
        if isinstance(data, dict) and "breed" not in data and ("reference" in data or "ref" in data):
            data = dict(data)  # Vamp: `- reference: name` (or `ref:`) is the service's breed
            data["breed"] = {"reference": data.pop("reference" if "reference" in data else "ref")}
        return rename_dialect(rename(data, "env", "environment_variables"))

    @property
    def breed_name(self) -> str | None:
        return self.breed.reference if isinstance(self.breed, BreedRef) else self.breed.name


def _services(value: Any) -> Any:
    """A single map or a bare breed name where the list of services is expected is wrapped."""
    return value if isinstance(value, list) else [value]


class ClusterGateway(Model):
    sticky: Sticky = None
    routes: Routes = {}
    virtual_hosts: VirtualHosts = []


def _port_key(value: Any) -> str:
    return value if value == UNRESOLVED_PORT else check_name(value, dotless=True, what="port name")


class Cluster(Model):
    services: Annotated[list[Service], BeforeValidator(_services)]
    gateways: MapOf(Annotated[str, BeforeValidator(_port_key)], ClusterGateway) = {}
    sla: SlaOrRef | None = None
    health_checks: OptionalHealthChecks = None
    network: SafeText | None = None
    dialects: Dialects = {}

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"services": [{"breed": data}]}
        if isinstance(data, list):  # Vamp: a cluster given as the list of its services
            return {"services": data}
        if not isinstance(data, dict):
            return data
        data = rename_dialect(data)
        if "services" not in data and "breed" in data:
            service = {k: data[k] for k in _SERVICE_KEYS if k in data}
            data = {k: v for k, v in data.items() if k not in _SERVICE_KEYS}
            data["services"] = [service]
        gateways = data.get("gateways")
        if isinstance(gateways, dict) and _GATEWAY_KEYS & set(gateways):
            data = {**data, "gateways": {UNRESOLVED_PORT: gateways}}
        return data

    @model_serializer(mode="wrap")
    def _short_gateways(self, handler: Any) -> dict:
        data = handler(self)
        gateways = data.get("gateways")
        if isinstance(gateways, dict) and list(gateways) == [UNRESOLVED_PORT]:
            data["gateways"] = gateways[UNRESOLVED_PORT]
        return data

    def check(self, problems: Problems, path: tuple, resolve: Any) -> None:
        """The cluster's rules, run by the blueprint so they are listed with the blueprint's own;
        also names a gateway's left-out port once the breeds are known."""
        problems = _Prefixed(problems, path)
        if not self.services:
            problems.add(("services",), "a cluster needs at least one service")
        names = {s.breed_name for s in self.services}
        breeds = [known_breed(s.breed, resolve) for s in self.services]
        for i, service in enumerate(self.services):
            if isinstance(service.breed, Breed) and service.breed.name is None:
                problems.add(("services", i, "breed", "name"), "an inline breed needs a name")
            for key, value in service.environment_variables.items():
                if value is None or value == "~":  # the service is the last scope: nothing could fill it
                    problems.add(("services", i, "environment_variables", key),
                                 "a service's environment variable needs a value")
            if breeds[i] is not None:
                # A health check on a port the breed lacks has nothing to probe (issue 11).
                own = service.health_checks is not None
                for j, check in enumerate(service.health_checks if own else self.health_checks or []):
                    if check.port not in breeds[i].ports:
                        problems.add(("services", i, "health_checks", j, "port") if own else
                                     ("health_checks", j, "port"),
                                     f"port {check.port!r} is not a port of breed {breeds[i].name!r}")
                for key in service.environment_variables:
                    if key not in breeds[i].environment_variables:
                        problems.add(
                            ("services", i, "environment_variables", key),
                            f"{key!r} is not an environment variable of breed {breeds[i].name!r}",
                        )
        ports = _ports(breeds)
        if ports is not None and UNRESOLVED_PORT in self.gateways:
            if len(ports) == 1:
                self.gateways = {(next(iter(ports)) if k == UNRESOLVED_PORT else k): g
                                 for k, g in self.gateways.items()}
            else:
                problems.add(("gateways",), "name the port: the breeds of this cluster have several ports")
        for port, gateway in self.gateways.items():
            for key in gateway.routes:
                if key not in names:
                    problems.add(("gateways", port, "routes", key), f"{key!r} is not a breed of this cluster")
            route_problems(gateway.routes, problems, ("gateways", port, "routes"))
            weight_problems(gateway.routes, problems, ("gateways", port, "routes"), exact=False)
            if ports is not None and port != UNRESOLVED_PORT:
                if port not in ports:
                    problems.add(("gateways", port), f"{port!r} is not a port of this cluster's breeds")
                else:
                    http_only_problems(gateway, problems, ("gateways", port), port_type(ports[port]))


class _Prefixed:
    """Adds `path` in front of every problem added."""

    def __init__(self, problems: Problems, path: tuple):
        self.problems, self.path = problems, path

    def add(self, path: tuple, reason: str) -> None:
        self.problems.add((*self.path, *path), reason)


def known_breed(breed: Any, resolve: Callable[[str, str], dict | None] | None) -> Breed | None:
    """The breed itself when inline, the stored one when `resolve` finds it, else None."""
    if isinstance(breed, Breed):
        return breed
    if resolve is None or "*" in breed.reference:
        return None
    document = resolve("breeds", breed.reference)
    if not isinstance(document, dict):
        return None
    try:
        return Breed.model_validate(document)
    except ValueError:
        return None


def _ports(breeds: list[Breed | None]) -> dict[str, str] | None:
    """Port name -> port of every breed of a cluster, None when one of them is unknown."""
    if any(b is None for b in breeds):
        return None
    return {name: port for b in breeds for name, port in b.ports.items()}


def _unique_ports(value: Any) -> Any:
    """`9050`, `9050/http` and `9050/tcp` are the same port: two of them is an error."""
    if not isinstance(value, dict):
        return value
    seen: dict[int, Any] = {}
    problems = Problems()
    for key in value:
        try:
            number = int(parse_port(key).split("/")[0])
        except ValueError:
            continue
        if number in seen:
            problems.add((key,), f"port {number} is already used by gateway {seen[number]!r}")
        seen.setdefault(number, key)
    problems.check()
    return value


class BlueprintGateway(Model):
    """A blueprint's own gateway: `"9050/http": cluster/port`, or `{routes, virtual_hosts, sticky}`."""

    sticky: Sticky = None
    routes: Routes = {}
    virtual_hosts: VirtualHosts = []
    metadata: Metadata = {}

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"routes": {data: {}}} if isinstance(data, str) else data

    @model_serializer(mode="wrap")
    def _quiet(self, handler: Any) -> Any:
        return drop_empty_metadata(handler(self))


def _named_ports(value: Any) -> Any:
    """Vamp's `web: {port: 8080/http, routes: ...}`: a gateway keyed by a name and given its
    port inside is the gateway of that port (the port is the key we store it under)."""
    value = as_dict(value)
    if not isinstance(value, dict):
        return value
    out: dict = {}
    problems = Problems()
    for key, gateway in value.items():
        try:
            parse_port(key)
            named = False
        except ValueError:
            named = True
        if isinstance(gateway, dict) and "port" in gateway:
            port = gateway["port"]
            port = str(port) if isinstance(port, int) and not isinstance(port, bool) else port
            if named and not isinstance(port, str):
                problems.add((key, "port"), "a port is a number or text like 8080/http")
            elif named and (port in value or port in out):
                problems.add((key, "port"), f"port {port} has a gateway already")
            elif named:
                out[port] = {k: v for k, v in gateway.items() if k != "port"}
            else:
                problems.add((key, "port"), "the key is the port already: give `port` only under a name")
        elif named:
            problems.add((key,), f"{key!r} is not a port: key a gateway by its port, or by a name with `port` inside")
        else:
            out[key] = gateway
    problems.check()
    return out


BlueprintGateways = Annotated[
    dict[Annotated[str, BeforeValidator(parse_port)], BlueprintGateway],
    BeforeValidator(_unique_ports),
    BeforeValidator(_named_ports),
]


class Blueprint(Artifact):
    kind: ClassVar[str] = "blueprints"
    gateways: BlueprintGateways = {}
    clusters: MapOf(Name, Cluster) = {}
    environment_variables: EnvironmentVariables = {}
    dialects: Dialects = {}

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return rename_dialect(rename(data, "env", "environment_variables"))

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> "Blueprint":
        problems = Problems()
        resolve = resolver(info)
        if not self.clusters:
            problems.add(("clusters",), "a blueprint needs at least one cluster with a service")
        for name, cluster in self.clusters.items():
            cluster.check(problems, ("clusters", name), resolve)
        self._breed_problems(problems, resolve)
        self._gateway_problems(problems, resolve)
        for name, cluster in self.clusters.items():
            if isinstance(cluster.sla, (Sla, SlaRef)):  # a reference's own escalations too (issue 14)
                for path, target in _targets(cluster.sla, ("clusters", name, "sla")):
                    if target not in self.clusters:
                        problems.add(path, f"escalation target {target!r} is not a cluster of this blueprint")
        for key in self.environment_variables:
            cluster, dot, variable = key.partition(".")
            if not dot or cluster not in self.clusters:
                problems.add(("environment_variables", key), "expected `<cluster>.<variable>` naming a cluster")
                continue
            breeds = [known_breed(s.breed, resolve) for s in self.clusters[cluster].services]
            if None not in breeds and not any(variable in b.environment_variables for b in breeds):
                problems.add(("environment_variables", key),
                             f"{variable!r} is not an environment variable of a breed of cluster {cluster!r}")
        self._reference_problems(problems, resolve)
        problems.check()
        return self

    def _reference_problems(self, problems: Problems, resolve: Any) -> None:
        """`$x.ports.p` (and `environment_variables`, `constants`) in an inline breed's or the
        blueprint's variables, where `x` is a dependency whose breed is in this blueprint, or a
        cluster of it, and every breed there is known: one of them has that port (Vamp's
        BlueprintTraitValidator; an inline dependency is its breed's own check)."""
        known = {s.breed_name: known_breed(s.breed, resolve) for _, s in self.services()}

        def targets(breed: Breed | None, first: str) -> list[Breed | None] | None:
            dependency = breed.dependencies.get(first) if breed is not None else None
            if isinstance(dependency, BreedRef):
                found = [b for n, b in known.items() if n and matches(dependency.reference, n)]
                return found or None
            if dependency is None and first in self.clusters:
                return [known[s.breed_name] for s in self.clusters[first].services]
            return None

        def check(path: tuple, value: str | None, breed: Breed | None) -> None:
            for ref in value_references(value or ""):
                parts = ref.split(".")
                if is_secret_reference(ref) or len(parts) != 3:
                    continue
                candidates = targets(breed, parts[0])
                if not candidates or None in candidates:
                    continue
                reasons = [missing_trait(b, ref) for b in candidates]
                if all(reasons):
                    shown = f"${ref}" if shows_no_secret(ref) else "a reference"
                    problems.add(path, f"{shown}: {reasons[0]}")

        for path, service in self.services():
            if isinstance(service.breed, Breed):
                for key, value in service.breed.environment_variables.items():
                    check((*path, "breed", "environment_variables", key), value, service.breed)
        for key, value in self.environment_variables.items():
            cluster = self.clusters.get(key.partition(".")[0])
            breeds = [known.get(s.breed_name) for s in cluster.services] if cluster else []
            check(("environment_variables", key), value, breeds[0] if len(breeds) == 1 else None)

    def services(self) -> Iterator[tuple[tuple, Service]]:
        for name, cluster in self.clusters.items():
            for i, service in enumerate(cluster.services):
                yield ("clusters", name, "services", i), service

    def _breed_problems(self, problems: Problems, resolve: Any) -> None:
        """Breed names are unique in a blueprint; every dependency of an INLINE breed is one of
        its breeds. As in Vamp, a referenced breed's dependencies are checked when the blueprint
        is deployed (`dependency_problems` with a resolver): a stored blueprint is a template."""
        seen: set[str] = set()
        for path, service in self.services():
            if service.breed_name in seen:
                problems.add((*path, "breed"), f"breed {service.breed_name!r} is used more than once in this blueprint")
            seen.add(service.breed_name)
        self.dependency_problems(problems, None)

    def dependency_problems(self, problems: Problems, resolve: Any) -> None:
        """Every dependency of a known breed (inline, or stored and found by `resolve`) is
        satisfied by a breed of this blueprint."""
        names = [s.breed_name for _, s in self.services()]
        for path, service in self.services():
            breed = known_breed(service.breed, resolve)
            for alias, dependency in (breed.dependencies.items() if breed else ()):
                wanted = dependency.reference if isinstance(dependency, BreedRef) else dependency.name
                if wanted and not any(matches(wanted, n) for n in names if n):
                    problems.add(
                        (*path, "breed", "dependencies", alias),
                        f"dependency {wanted!r} is not satisfied by a breed of this blueprint",
                    )

    def _gateway_problems(self, problems: Problems, resolve: Any) -> None:
        for port, gateway in self.gateways.items():
            path = ("gateways", port)
            route_problems(gateway.routes, problems, (*path, "routes"))
            weight_problems(gateway.routes, problems, (*path, "routes"), exact=True)
            http_only_problems(gateway, problems, path, port_type(port))
            for key in gateway.routes:
                cluster_name, slash, port_name = key.partition("/")
                cluster = self.clusters.get(cluster_name)
                if not slash or "/" in port_name or cluster is None:
                    problems.add((*path, "routes", key), f"{key!r} is not `<cluster>/<port>` of this blueprint")
                    continue
                ports = _ports([known_breed(s.breed, resolve) for s in cluster.services])
                if ports is not None and port_name not in ports:
                    problems.add((*path, "routes", key), f"{port_name!r} is not a port of cluster {cluster_name!r}")


def _targets(node: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    """(path of the `target`, target) for every inline escalation under an SLA or escalation."""
    if isinstance(node, Escalation) and node.target is not None:
        yield (*path, "target"), node.target
    for i, child in enumerate(getattr(node, "escalations", None) or []):
        if isinstance(child, Escalation):
            yield from _targets(child, (*path, "escalations", i))

