"""Deployment use cases with I/O: the store (versioned items of kind `deployments` in the same
table, conditional writes, the deployment and its gateways in one transaction through the
gateway write path: port claims, generation bump, publishing), POST/PUT merge, DELETE slice,
scale and SLA sub-resources. Nothing here knows HTTP."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from pydantic import ValidationError

from chalicelib import drivers, dsl
from chalicelib.artifacts import Outcome, Resolver
from chalicelib.deployments import implied_gateways as G
from chalicelib.deployments import route_targets
from chalicelib.deployments.blueprint import as_blueprint as to_blueprint
from chalicelib.deployments.merge import merge
from chalicelib.deployments.model import DeploymentCluster, dump, load, new_status
from chalicelib.deployments.slice import prune, selection_of, slice_
from chalicelib.dsl import Scale
from chalicelib.dsl.document import field_errors
from chalicelib.dsl.names import check_name
from chalicelib.errors import Conflict, FieldError, NotFound, ValidationFailed
from chalicelib.gateways import writes as gateway_writes
from chalicelib.store import namespaces as registry
from chalicelib.store.artifact_store import StoredArtifact, Write

log = logging.getLogger(__name__)

KIND = "deployments"
Publish = Callable[[str, list[dict]], None]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def get(store, namespace: str, name: str) -> StoredArtifact:
    found = store.get(namespace, KIND, name)
    if found is None:
        raise NotFound(f"deployments/{name} does not exist", [FieldError("name", "not found")])
    return found


def stored_gateways(store, namespace: str, names: list[str]) -> dict[str, dict]:
    found = store.get_many(namespace, [("gateways", n) for n in names]) if names else {}
    return {n: a.document for (_, n), a in found.items()}


def current(store, namespace: str, stored: StoredArtifact):
    """The stored deployment with its cluster gateways as HAProxy routes them now."""
    dep = load(stored.document)
    return G.absorb(dep, stored_gateways(store, namespace, list(G.documents(dep))))


def show(store, namespace: str, stored: StoredArtifact, as_blueprint: bool) -> dict:
    dep = current(store, namespace, stored)
    return to_blueprint(dep) if as_blueprint else dump(dep)


def _blueprint(store, namespace: str, data: Any, resolve):
    """A blueprint body, or a reference to a stored blueprint (`name`, `{reference: name}`)."""
    ref = data if isinstance(data, str) else None
    if isinstance(data, dict) and len(data) == 1 and ("reference" in data or "ref" in data):
        ref = data.get("reference", data.get("ref"))
    if ref is not None:
        try:  # a name as the DSL spells one: `5`, `[]`, `""` reached the store as a key (a 500)
            ref = check_name(ref, what="blueprint reference")
        except ValueError as e:
            raise ValidationFailed.at("reference", str(e)) from None
        doc = resolve("blueprints", ref)
        if doc is None:
            raise ValidationFailed.at("reference", f"unknown blueprint {ref!r}")
        data = doc
    if not isinstance(data, dict):
        raise ValidationFailed.at("body", "a blueprint, or a reference to a stored one")
    return dsl.parse("blueprints", data, resolve=resolve)


def _admit(namespace: str, blueprint) -> None:
    """What the namespace's driver would refuse (no driver it may use, a dialect its policy
    refuses) is a 400 before anything is stored (docs/decisions/0026)."""
    levels = [("dialects", blueprint.dialects)]
    for cname, cluster in blueprint.clusters.items():
        levels.append((f"clusters.{cname}.dialects", cluster.dialects))
        levels += [(f"clusters.{cname}.services[{i}].dialects", s.dialects) for i, s in enumerate(cluster.services)]
    problems = drivers.admission(namespace, levels)
    problems += _argument_problems(namespace, blueprint)
    if problems:
        raise ValidationFailed("Refused by the namespace's driver", [FieldError(p, r) for p, r in problems])


def _argument_problems(namespace: str, blueprint) -> list[tuple[str, str]]:
    """Each service's `arguments` (its breed's, then its own: as synchronisation passes them) the
    namespace's driver cannot apply, refused before anything is stored, never dropped."""
    from chalicelib.drivers import job_arguments

    problems = []
    for cname, cluster in blueprint.clusters.items():
        for i, s in enumerate(cluster.services):
            at = f"clusters.{cname}.services[{i}]"
            given = [(f"{at}.breed.arguments[{j}].{k}", (str(k), str(v)))
                     for j, a in enumerate(getattr(s.breed, "arguments", None) or []) for k, v in a.items()]
            given += [(f"{at}.arguments[{j}].{k}", (str(k), str(v))) for j, a in enumerate(s.arguments or [])
                      for k, v in a.items()]
            problems += job_arguments.problems(namespace, given)
    return problems


def _register(namespace: str) -> None:
    registry.register(KIND, namespace)


def namespaces() -> list[str]:
    """Every namespace that ever had a deployment (the scheduled synchronisation visits them)."""
    return registry.registered(KIND)


def summary_of(doc: dict) -> dict:
    """The stored deployment in brief: what the scheduled pass needs to see that it has nothing
    to do without reading it (docs/decisions/0034). `settled`: every service intended deployed,
    `done`, no retry pending; `services`: [cluster, service, the digest it was deployed with];
    `sla`: some cluster has an SLA (the SLA pass reads only those: chalicelib/slas)."""
    settled, services, sla = True, [], False
    for cname, cluster in (doc.get("clusters") or {}).items():
        sla = sla or cluster.get("sla") is not None
        for s in cluster.get("services") or []:
            status = s.get("status") or {}
            settled = settled and (status.get("intention") == "deployment"
                                   and (status.get("phase") or {}).get("name") == "done" and not s.get("retry_at"))
            services.append([cname, (s.get("breed") or {}).get("name"), s.get("digest")])
    return {"settled": settled, "services": services, "sla": sla}


def write(store, namespace: str, name: str, before, after, expected: int | None, publish: Publish,
          extra: list[Write] = ()) -> StoredArtifact | None:
    """Store the deployment (None deletes it) with its summary and the gateways it implies, in
    one transaction with the gateway layer's port claims and generation; then publish the
    namespace."""
    old = G.documents(before) if before is not None else {}
    new = G.documents(after) if after is not None else {}
    existing = stored_gateways(store, namespace, list(old | new))
    doc = dump(after) if after is not None else None
    writes: list[Write] = [Write(KIND, name, doc, expected, summary=summary_of(doc) if doc is not None else None)]
    for gname, doc in new.items():
        canonical = dsl.dump(dsl.parse("gateways", doc))
        if gname in existing and existing[gname].get("port") and "port" not in doc:
            canonical = {**canonical, "port": existing[gname]["port"]}
        if existing.get(gname) != canonical:
            writes.append(Write("gateways", gname, canonical, 0))
    for gname in old:
        if gname not in new and gname in existing:
            writes.append(Write("gateways", gname, None, 0))
    writes += list(extra)
    gateway_writes.check(writes, [""] * len(writes), lambda k, n: None)
    results = gateway_writes.apply(store, namespace, writes)
    outcomes = [Outcome(w.kind, w.name, r, w.document or {}) for w, r in zip(writes, results)
                if w.kind == "gateways"]
    gateway_writes.after(store, namespace, outcomes, publish, route_targets.source)
    return results[0]


def change(store, namespace: str, name: str | None, data: Any, mode: str, publish: Publish, *,
           validate_only: bool = False, force: bool = False) -> tuple[int, dict | None]:
    """POST/PUT (mode `merge`) or DELETE (mode `slice`; `data` None: everything).
    Returns (version, the deployment as stored) or (0, None) when it is gone."""
    resolve = Resolver(store, namespace, {})
    blueprint = _blueprint(store, namespace, data, resolve) if data is not None else None
    if mode == "merge" and blueprint is not None:
        _admit(namespace, blueprint)
    name = name or blueprint.name
    stored = store.get(namespace, KIND, name)
    before = current(store, namespace, stored) if stored else None
    extra: list[Write] = []
    if mode == "merge":
        after, inline_breeds = merge(before, name, blueprint, resolve, now())
        stored_breeds = store.get_many(namespace, [("breeds", b["name"]) for b in inline_breeds])
        for b in inline_breeds:
            if (("breeds", b["name"]) not in stored_breeds
                    or stored_breeds[("breeds", b["name"])].document != b):
                extra.append(Write("breeds", b["name"], b, 0))
    else:
        if before is None:
            raise NotFound(f"deployments/{name} does not exist", [FieldError("name", "not found")])
        after = slice_(before, selection_of(blueprint) if blueprint is not None else None, now())
        if force:
            after = prune(after.model_copy(update={"clusters": {}})) if blueprint is None else after
    if validate_only:
        return (stored.version if stored else 0), (dump(after) if after is not None else None)
    if after is None:  # forced removal: the driver is told by the next pass over what it runs
        write(store, namespace, name, before, None, stored.version, publish)
        return 0, None
    result = write(store, namespace, name, before, after, stored.version if stored else None, publish, extra)
    if stored is None:
        _register(namespace)
    return result.version, result.document


def scale(store, namespace: str, name: str, cluster: str, service: str, data: Any | None, publish: Publish):
    """GET (data None) or PUT a service's scale; a change sends it back to initiated."""
    stored = get(store, namespace, name)
    dep = current(store, namespace, stored)
    found = dep.clusters.get(cluster).service(service) if cluster in dep.clusters else None
    if found is None:
        raise NotFound(f"deployments/{name}/clusters/{cluster}/services/{service} does not exist",
                       [FieldError("service", "not found")])
    if data is None:
        return _scale_doc(found.scale)

    try:
        new = Scale.model_validate({k: v for k, v in (data or {}).items() if k not in ("kind", "name", "metadata")}
                                   if isinstance(data, dict) else data)
    except ValidationError as e:
        raise ValidationFailed("Invalid scale", field_errors(e)) from None
    if new != found.scale:
        before = dep.model_copy(deep=True)
        found.scale = new
        found.status = new_status(now())
        write(store, namespace, name, before, dep, stored.version, publish)
    return _scale_doc(new)


def _scale_doc(scale) -> dict:
    body = scale.model_dump(mode="json", exclude_none=True)
    body.pop("metadata", None)
    return body


def _check_sla(store, namespace: str, dep, value) -> None:
    """What Vamp refuses of an SLA set on a deployment's cluster (issue 14): an escalation
    `target` that is not a cluster of the deployment, a reference to an SLA that is not stored."""
    from chalicelib.dsl.blueprint import _targets
    from chalicelib.dsl.sla import SlaRef

    problems = [FieldError(".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "["),
                           f"escalation target {target!r} is not a cluster of deployment {dep.name}")
                for path, target in _targets(value, ("sla",)) if target not in dep.clusters]
    if isinstance(value, SlaRef) and store.get(namespace, "slas", value.reference) is None:
        problems.append(FieldError("sla.reference", f"unknown sla {value.reference!r}"))
    if problems:
        raise ValidationFailed("Invalid sla", problems)


def sla(store, namespace: str, name: str, cluster: str, data: Any | None, method: str, publish: Publish):
    """GET, POST/PUT (set) or DELETE a cluster's SLA."""
    stored = get(store, namespace, name)
    dep = current(store, namespace, stored)
    if cluster not in dep.clusters:
        raise NotFound(f"deployments/{name}/clusters/{cluster} does not exist", [FieldError("cluster", "not found")])
    if method == "GET":
        value = dep.clusters[cluster].sla
        if value is None:
            raise NotFound("no sla", [FieldError("sla", "not set")])
        return DeploymentCluster.model_validate({"sla": value}).model_dump(mode="json", exclude_none=True)["sla"]
    before = dep.model_copy(deep=True)
    if method == "DELETE":
        dep.clusters[cluster].sla = None
    else:
        try:
            dep.clusters[cluster] = DeploymentCluster.model_validate(
                {**dep.clusters[cluster].model_dump(mode="json", exclude_none=True), "sla": data})
        except ValidationError as e:  # the paths are the cluster's: `sla.threshold`, already under `sla`
            raise ValidationFailed("Invalid sla", [FieldError(x.path if x.path.startswith("sla") else f"sla.{x.path}",
                                                              x.reason) for x in field_errors(e)]) from None
        _check_sla(store, namespace, dep, dep.clusters[cluster].sla)
    try:
        write(store, namespace, name, before, dep, stored.version, publish)
    except Conflict:
        raise
    if method == "DELETE":
        return None
    return DeploymentCluster.model_validate({"sla": data}).model_dump(mode="json", exclude_none=True)["sla"]
