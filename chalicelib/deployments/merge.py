"""POST and PUT of a blueprint into a deployment, as Vamp merges them.

- Breeds and scales given by reference are looked up (`resolve`); inline named breeds are
  returned so the caller stores them as breeds too.
- Clusters not in the blueprint are kept; new clusters are added.
- In an existing cluster, services merge by breed name: breed, scale, environment, arguments,
  health checks, network and dialects are taken from the blueprint; any change of those (or of
  the cluster's gateways or root variables) sends the service back to `initiated`. A new service
  is appended as `initiated`.
- Cluster gateways are replaced when the blueprint gives any; either way every port of the
  cluster ends with one route per service being deployed, and a route added for a new service
  has no weight: next to routes holding 100% it gets 0%, so merging a new version never moves
  traffic by itself.
- Blueprint gateways (`9050/http: cluster/port`) replace the deployment's on the same port.
"""
from __future__ import annotations

from typing import Any, Callable

from chalicelib.deployments.cluster_weights import normalise
from chalicelib.deployments.model import (
    Deployment,
    DeploymentCluster,
    DeploymentService,
    new_status,
)
from chalicelib.dsl import (
    Breed,
    BreedRef,
    ClusterGateway,
    Scale,
    ScaleRef,
    default_scale,
    dump,
)
from chalicelib.dsl.breed import matches
from chalicelib.errors import FieldError, ValidationFailed

Resolve = Callable[[str, str], "dict | None"]
UNRESOLVED_PORT = ""
_SPEC_FIELDS = ("breed", "scale", "environment_variables", "arguments", "health_checks", "network", "dialects")


def expand(blueprint: Any, resolve: Resolve | None) -> tuple[dict[str, list[tuple[Any, Any]]], list[dict]]:
    """cluster -> [(service, breed model, scale model)] with references looked up, and the inline
    named breeds (dumped) to store. ValidationFailed lists every unknown reference."""
    errors: list[FieldError] = []
    inline: dict[str, dict] = {}
    out: dict[str, list] = {}

    def collect_inline(breed: Breed) -> None:
        if breed.name and breed.name not in inline:
            inline[breed.name] = dump(breed)
        for dep in breed.dependencies.values():
            if isinstance(dep, Breed):
                collect_inline(dep)

    for cname, cluster in blueprint.clusters.items():
        rows = []
        for i, service in enumerate(cluster.services):
            path = f"clusters.{cname}.services[{i}]"
            breed = service.breed
            if isinstance(breed, BreedRef):
                breed = _stored(resolve, "breeds", breed.reference, Breed, f"{path}.breed", errors)
                if breed is None:
                    continue
            else:
                collect_inline(breed)
            scale = service.scale
            if isinstance(scale, ScaleRef):
                scale = _stored(resolve, "scales", scale.reference, Scale, f"{path}.scale", errors)
                if scale is None:
                    continue
            elif scale is None:
                scale = default_scale()
            rows.append((service, breed, scale))
        out[cname] = rows
    if errors:
        raise ValidationFailed("Invalid blueprint", errors)
    return out, list(inline.values())


def _service(service: Any, breed: Any, scale: Any, now: str) -> DeploymentService:
    return DeploymentService(
        breed=breed, scale=scale.model_copy(update={"name": None, "metadata": {}}),
        environment_variables=dict(service.environment_variables), arguments=list(service.arguments),
        health_checks=service.health_checks, network=service.network, dialects=dict(service.dialects),
        status=new_status(now),
    )


def _same_spec(a: DeploymentService, b: DeploymentService) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in _SPEC_FIELDS)


def _cluster_gateways(cluster: Any, ports: dict[str, str], path: str) -> dict:
    gateways = dict(cluster.gateways)
    if UNRESOLVED_PORT in gateways:
        if len(ports) != 1:
            raise ValidationFailed.at(f"{path}.gateways", "name the port: the breeds of this cluster have several ports"
                                      if ports else "the breeds of this cluster have no port")
        gateways = {(next(iter(ports)) if k == UNRESOLVED_PORT else k): g for k, g in gateways.items()}
    for port in gateways:
        if port not in ports:
            raise ValidationFailed.at(f"{path}.gateways.{port}", f"{port!r} is not a port of this cluster's breeds")
    return gateways


def route_gateways(cluster: DeploymentCluster, *, rescale: bool = False) -> None:
    """Every port of the cluster gets a gateway with one route per service being deployed."""
    ports = cluster.ports()
    if not ports:
        cluster.gateways = {}
        return
    gateways = {}
    for port in ports:
        services = [s.name for s in cluster.services if s.deploying and port in s.breed.ports]
        gateway = cluster.gateways.get(port) or ClusterGateway()
        gateways[port] = gateway.model_copy(update={"routes": normalise(gateway.routes, services, rescale=rescale)})
    cluster.gateways = gateways


def merge(deployment: Deployment | None, name: str, blueprint: Any, resolve: Resolve | None,
          now: str) -> tuple[Deployment, list[dict]]:
    """The deployment after merging `blueprint` into it (a new one when None), and the inline
    breeds to store."""
    expanded, inline_breeds = expand(blueprint, resolve)
    dep = deployment.model_copy(deep=True) if deployment is not None else Deployment(name=name)
    old_env = dict(dep.environment_variables)
    dep.environment_variables = {**dep.environment_variables, **blueprint.environment_variables}
    dep.dialects = {**dep.dialects, **blueprint.dialects}
    dep.metadata = {**dep.metadata, **blueprint.metadata}  # e.g. `release_policy` (decision 0041)
    for cname, bp_cluster in blueprint.clusters.items():
        path = f"clusters.{cname}"
        cluster = dep.clusters.get(cname) or DeploymentCluster()
        env_changed = any(old_env.get(k) != v for k, v in blueprint.environment_variables.items()
                          if k.split(".", 1)[0] == cname)
        for service, breed, scale in expanded[cname]:
            new = _service(service, breed, scale, now)
            current = cluster.service(breed.name)
            if current is None:
                cluster.services.append(new)
            elif not current.deploying or not _same_spec(current, new) or env_changed:
                index = cluster.services.index(current)
                cluster.services[index] = new.model_copy(update={
                    "instances": current.instances, "digest": current.digest})
        if env_changed:
            for s in cluster.services:
                if s.deploying and s.status.phase.name != "initiated":
                    s.status = new_status(now)
        for field in ("sla", "health_checks", "network"):
            value = getattr(bp_cluster, field)
            if value is not None:
                setattr(cluster, field, value)
        cluster.dialects = {**cluster.dialects, **bp_cluster.dialects}
        if bp_cluster.gateways:
            given = _cluster_gateways(bp_cluster, cluster.ports(), path)
            if given != cluster.gateways:
                cluster.gateways = given
                for s in cluster.services:
                    if s.deploying and s.status.phase.name != "initiated":
                        s.status = new_status(now)
        route_gateways(cluster)
        dep.clusters[cname] = cluster
    dep.gateways = {**dep.gateways, **blueprint.gateways}
    check_gateways(dep)
    check_dependencies(dep)
    return dep, inline_breeds


def check_dependencies(dep: Deployment) -> None:
    """Every dependency of a breed being deployed is a breed being deployed in this deployment:
    references a stored blueprint or breed left open (a breed stored later, a breed inline in
    another cluster, Vamp's "split a monolith") are resolved here, or the deploy is a 400."""
    deployed = [s.name for _, _, s in dep.services() if s.deploying]
    errors = []
    for cname, cluster in dep.clusters.items():
        for i, service in enumerate(cluster.services):
            if not service.deploying:
                continue
            for alias, dependency in service.breed.dependencies.items():
                wanted = dependency.reference if isinstance(dependency, BreedRef) else dependency.name
                if wanted and not any(matches(wanted, name) for name in deployed):
                    errors.append(FieldError(
                        f"clusters.{cname}.services[{i}].breed.dependencies.{alias}",
                        f"breed {wanted!r} is not deployed in deployment {dep.name!r}: "
                        "add it to the blueprint (or deploy it first)"))
    if errors:
        raise ValidationFailed("Unresolved dependencies", errors)


def check_gateways(dep: Deployment) -> None:
    """Blueprint gateways route to `<cluster>/<port>` of this deployment."""
    errors = []
    for port, gateway in dep.gateways.items():
        for key in gateway.routes:
            cname, _, pname = key.partition("/")
            cluster = dep.clusters.get(cname)
            if cluster is None or pname not in cluster.ports():
                errors.append(FieldError(f"gateways.{port}.routes.{key}",
                                         f"{key!r} is not `<cluster>/<port>` of deployment {dep.name!r}"))
    if errors:
        raise ValidationFailed("Invalid blueprint", errors)


def _stored(resolve, kind: str, name: str, model, path: str, errors: list):
    """A referenced artifact read through `resolve` as its model, or None (an error noted)."""
    doc = resolve(kind, name) if resolve else None
    if doc is None:
        errors.append(FieldError(path, f"unknown {kind[:-1]} {name!r}"))
        return None
    return model.model_validate({k: v for k, v in doc.items() if k != "kind"})
