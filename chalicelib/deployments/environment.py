"""Environment variables of a deployed service, and the order services deploy in.

Scopes, lowest first: the breed's `environment_variables`; the blueprint root's
`<cluster>.<VAR>`; the service's own. Values may reference, as `$x.host`, `$x.ports.<port>`,
`$x.environment_variables.<VAR>`, `$x.constants.<C>` (or `${...}`), where `x` is a dependency
alias of the breed or a cluster of the deployment: the host is where the gateways run, a port
is the port of the internal gateway `<deployment>/<cluster>/<port>`. `$$` is a `$`. A value
left `~` must be filled by a higher scope, or deploying fails with the reason. `${ssm:...}` and
`${secretsmanager:...}` are secrets, read through the `secrets` look-up given (deployments/
secrets.py); no reason ever repeats a value (a reference only when it is plainly one).
"""
from __future__ import annotations

import re
from typing import Callable

from chalicelib.deployments.model import (
    Deployment,
    DeploymentCluster,
    DeploymentService,
)
from chalicelib.dsl.breed import matches
from chalicelib.dsl.secrets import is_secret_reference, shows_no_secret

Secrets = Callable[[str], str]  # a secret reference (`ssm:/x`) -> its value; EnvironmentError_ if it cannot

_VALUE_REF_RE = re.compile(r"\$(\$|\{([^}$]*)\}|([A-Za-z0-9_\-.]*[A-Za-z0-9_\-]))")  # as dsl/breed.py's (linear)


class EnvironmentError_(ValueError):
    """A variable cannot be filled; the message says which and why."""


def _matches(pattern: str, name: str) -> bool:
    return matches(pattern, name)


def target_cluster(dep: Deployment, cname: str, service: DeploymentService, alias: str) -> str | None:
    """The cluster a reference's first segment names: a dependency alias of the breed (the
    cluster running a matching breed), else a cluster of the deployment."""
    dependency = service.breed.dependencies.get(alias)
    if dependency is not None:
        wanted = getattr(dependency, "reference", None) or getattr(dependency, "name", None)
        for other, cluster in dep.clusters.items():
            if any(s.deploying and _matches(wanted, s.name) for s in cluster.services):
                return other
        return None
    return alias if alias in dep.clusters else None


def dependencies(dep: Deployment, cname: str, service: DeploymentService) -> list[tuple[str, str]]:
    """(cluster, breed name) of the services this one depends on."""
    out = []
    for alias, dependency in service.breed.dependencies.items():
        wanted = getattr(dependency, "reference", None) or getattr(dependency, "name", None)
        for other, cluster in dep.clusters.items():
            for s in cluster.services:
                if s.deploying and s is not service and _matches(wanted, s.name):
                    out.append((other, s.name))
    return out


def order(dep: Deployment) -> list[tuple[str, str]]:
    """(cluster, breed name) of every service being deployed, dependencies first; a cycle raises."""
    todo = [(c, s.name) for c, _, s in dep.services() if s.deploying]
    done: list[tuple[str, str]] = []
    visiting: set[tuple[str, str]] = set()

    def visit(node: tuple[str, str], chain: list[tuple[str, str]]) -> None:
        if node in done:
            return
        if node in visiting:
            raise EnvironmentError_("dependency cycle: " + " -> ".join(f"{c}/{s}" for c, s in chain + [node]))
        visiting.add(node)
        cluster = dep.clusters[node[0]]
        service = cluster.service(node[1])
        for dependency in dependencies(dep, node[0], service):
            visit(dependency, chain + [node])
        visiting.discard(node)
        done.append(node)

    for node in todo:
        visit(node, [])
    return done


def environment(dep: Deployment, cname: str, service: DeploymentService, host: str,
                ports: dict[tuple[str, str], int], _seen: tuple = (), *, secrets: Secrets | None = None) -> dict[str, str]:
    """The service's variables, every reference filled. `ports`: (cluster, port name) -> the
    port of its internal gateway; `secrets`: reads secret references (None: they cannot be)."""
    key = (cname, service.name)
    if key in _seen:
        raise EnvironmentError_("environment variables refer to each other in a cycle: "
                                + " -> ".join(f"{c}/{s}" for c, s in (*_seen, key)))
    raw: dict[str, str | None] = dict(service.breed.environment_variables)
    prefix = f"{cname}."
    raw.update({k[len(prefix):]: v for k, v in dep.environment_variables.items() if k.startswith(prefix)})
    raw.update(service.environment_variables)
    out: dict[str, str] = {}
    for name, value in raw.items():
        if value is None or value == "~":  # YAML's `~` is None; JSON users write the string
            raise EnvironmentError_(
                f"{cname}/{service.name}: environment variable {name} is `~` and nobody filled it "
                f"(give it in the service, or as `{cname}.{name}` at the blueprint root)")
        out[name] = _fill(dep, cname, service, name, value, host, ports, (*_seen, key), secrets)
    return out


def _fill(dep: Deployment, cname: str, service: DeploymentService, var: str, value: str, host: str,
          ports: dict[tuple[str, str], int], seen: tuple, secrets: Secrets | None) -> str:
    def replace(m: re.Match) -> str:
        if m.group(1) == "$":
            return "$"
        ref = m.group(2) if m.group(2) is not None else m.group(3)
        return _lookup(dep, cname, service, var, ref, host, ports, seen, secrets)

    return _VALUE_REF_RE.sub(replace, value)


def _lookup(dep: Deployment, cname: str, service: DeploymentService, var: str, ref: str, host: str,
            ports: dict[tuple[str, str], int], seen: tuple, secrets: Secrets | None) -> str:
    shown = f"${{{ref}}}" if shows_no_secret(ref) else "a reference"
    where = f"{cname}/{service.name}: environment variable {var}: {shown}"
    if is_secret_reference(ref):
        if secrets is None:
            raise EnvironmentError_(f"{where}: no secret store to read it from")
        try:
            return secrets(ref)
        except EnvironmentError_ as e:
            raise EnvironmentError_(f"{cname}/{service.name}: environment variable {var}: {e}") from None
    alias, dot, rest = ref.partition(".")
    if not dot:
        if alias in service.breed.constants and service.breed.constants[alias] is not None:
            return service.breed.constants[alias]
        raise EnvironmentError_(f"{where} names no constant of breed {service.name}")
    target = target_cluster(dep, cname, service, alias)
    if target is None:
        named = f"{alias!r}" if shows_no_secret(ref) else "it"
        raise EnvironmentError_(f"{where}: {named} is neither a dependency being deployed nor a cluster")
    cluster: DeploymentCluster = dep.clusters[target]
    if rest == "host":
        return host
    kind, _, item = rest.partition(".")
    if kind == "ports":
        if item not in cluster.ports():
            raise EnvironmentError_(f"{where}: cluster {target} has no port {item!r}")
        port = ports.get((target, item))
        if port is None:
            raise EnvironmentError_(f"{where}: the gateway {dep.name}/{target}/{item} has no port yet")
        return str(port)
    providers = [s for s in cluster.services if s.deploying]
    if kind == "environment_variables":
        for provider in providers:
            if item in provider.breed.environment_variables or item in provider.environment_variables:
                return environment(dep, target, provider, host, ports, seen, secrets=secrets)[item]
        raise EnvironmentError_(f"{where}: cluster {target} has no environment variable {item!r}")
    if kind == "constants":
        for provider in providers:
            if provider.breed.constants.get(item) is not None:
                return provider.breed.constants[item]
        raise EnvironmentError_(f"{where}: cluster {target} has no constant {item!r}")
    raise EnvironmentError_(f"{where}: expected host, ports.<port>, environment_variables.<VAR> or constants.<C>")
