"""An image pushed to ECR starts a release (decision 0041).

For an "ECR Image Action" (PUSH, SUCCESS) event, every cluster of every deployment (in every
namespace that has deployments) with a service being deployed from that repository - the
deployable, without its tag or digest, is exactly `<account>.dkr.ecr.<region>.amazonaws.com/
<repository-name>` - gets a new breed version, `<breed>:<tag>` deployed from `<repository>@<digest>`,
merged into the deployment at 0%, and a release of it on the cluster's gateway with the release
policy the deployment names in its metadata:

    metadata: {release_policy: safe}                 # every cluster
    metadata: {release_policy: {web: safe}}          # per cluster

Idempotent (EventBridge delivers at least once): the release is named after the deployment,
the cluster and the digest (`ecr-<deployment>-<cluster>-<12 hex of the digest>`), so a second
delivery finds it and refuses; a delivery that merged the version and could not start its
release is completed by the next one. A cluster serving more than one port is refused (a
release moves one gateway). Every decision is an event (`ecr:started`, `ecr:refused`
with the reason; tags `deployments:<d>`, `clusters:<c>`, `releases:<r>`).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from chalicelib import dsl
from chalicelib.artifacts import Resolver
from chalicelib.automations.events import note, triggering
from chalicelib.deployments import operations as deployments
from chalicelib.deployments.cluster_weights import weight_of
from chalicelib.deployments.implied_gateways import internal_name, service_route
from chalicelib.dsl.names import check_name
from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.store.event_backend import event_store

log = logging.getLogger(__name__)

PATTERN = {"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
           "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]}}
POLICY_KEY = "release_policy"
_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
_REPOSITORY_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,255}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
PAGE = 100


@dataclass(frozen=True)
class Push:
    registry: str
    repository: str
    tag: str | None
    digest: str
    event_id: str

    @property
    def image(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def short(self) -> str:
        return self.digest.split(":", 1)[1][:12]

    def value(self) -> dict:
        return {"repository": self.repository, "image": self.image, "tag": self.tag, "digest": self.digest,
                "event": self.event_id}


def push_of(event: dict) -> Push | None:
    """The push an EventBridge event reports; None for anything else (or malformed)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict) or event.get("source") != "aws.ecr":
        return None
    if detail.get("action-type") != "PUSH" or detail.get("result") != "SUCCESS":
        return None
    repository, digest, tag = detail.get("repository-name"), detail.get("image-digest"), detail.get("image-tag")
    account, region = str(event.get("account", "")), str(event.get("region", ""))
    if not (isinstance(repository, str) and _REPOSITORY_RE.fullmatch(repository)):
        return None
    if not (isinstance(digest, str) and _DIGEST_RE.fullmatch(digest)):
        return None
    if not (re.fullmatch(r"^[0-9]{12}$", account) and re.fullmatch(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", region)):
        return None
    tag = tag if isinstance(tag, str) and _TAG_RE.fullmatch(tag) else None
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return Push(f"{account}.dkr.ecr.{region}{suffix}", repository, tag, digest, str(event.get("id", "")))


def repository_of(definition: str) -> str:
    """`registry/repo:tag@sha256:...` -> `registry/repo` (a registry's port is no tag)."""
    name = definition.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


def policy_named(metadata: dict, cluster: str) -> str | None:
    named = (metadata or {}).get(POLICY_KEY)
    if isinstance(named, dict):
        named = named.get(cluster)
    return named if isinstance(named, str) and named else None


def on_push(event: dict, d=None, store=None, writers=None) -> list[dict]:
    """Handle one ECR event; returns the automation events it published (which trigger the
    workflows listening for them: `writers`, the handler layer's, for the built-ins; 0044)."""
    with triggering(writers):
        return _on_push(event, d, store)


def _on_push(event: dict, d=None, store=None) -> list[dict]:
    push = push_of(event)
    if push is None:
        log.info("not a successful ECR push: %s", event.get("id") if isinstance(event, dict) else event)
        return []
    if d is None:
        from chalicelib.releases import operations as releases

        d = releases.deps()
    store = store or d.router.store
    outcomes = []
    for namespace in deployments.namespaces():
        page = 1
        while True:
            listed = store.list(namespace, deployments.KIND, page, PAGE)
            for stored in listed.items:
                outcomes += _deployment(push, namespace, store, stored, d)
            if page * PAGE >= listed.total or not listed.items:
                break
            page += 1
    if not outcomes:
        log.info("push of %s@%s: no deployment runs that repository", push.image, push.digest)
    return outcomes


ATTEMPTS = 3  # a deployment another writer changed meanwhile is read again and decided again


class _Stale(Exception):
    """The deployment changed between the read and the merge."""


def _matching(push: Push, cluster) -> list:
    return [s for s in cluster.services if s.deploying and s.breed.deployable
            and repository_of(s.breed.deployable.definition) == push.image]


def _deployment(push: Push, namespace: str, store, stored, d) -> list[dict]:
    out = []
    for cname in list(stored.document.get("clusters") or {}):
        for attempt in range(ATTEMPTS):
            if attempt:
                stored = store.get(namespace, deployments.KIND, stored.document["name"])
                if stored is None:
                    break
            dep = deployments.current(store, namespace, stored)
            cluster = dep.clusters.get(cname)
            matching = _matching(push, cluster) if cluster is not None else []
            if not matching:
                break
            try:
                out.append(_cluster(push, namespace, store, dep, cname, cluster, matching, d, last=attempt + 1 == ATTEMPTS))
                break
            except _Stale:
                continue
    return out


def _cluster(push: Push, namespace: str, store, dep, cname: str, cluster, matching: list, d, *,
             last: bool = True) -> dict:
    tags = [f"deployments:{dep.name}", f"clusters:{cname}"]
    value = {**push.value(), "deployment": dep.name, "cluster": cname}

    def refuse(reason: str, **more: Any) -> dict:
        log.info("push of %s@%s on %s/%s/%s refused: %s", push.image, push.digest, namespace, dep.name, cname, reason)
        extra = [f"releases:{more['release']}"] if more.get("release") else []
        return note(namespace, ["ecr:refused", *tags, *extra], {**value, **more, "reason": reason})

    policy = policy_named(dep.metadata, cname)
    if policy is None:
        return refuse(f"no release policy named: set metadata `{POLICY_KEY}: <policy>` on the deployment "
                      f"(or `{POLICY_KEY}: {{{cname}: <policy>}}`)")
    resolve = Resolver(store, namespace, {})
    if resolve("release-policies", policy) is None:
        return refuse(f"release policy {policy!r} does not exist", policy=policy)
    try:
        release = check_name(f"ecr-{dep.name}-{cname}-{push.short}"[-255:])
    except ValueError as e:
        return refuse(str(e), policy=policy)
    existing = d.store.get(namespace, release)
    if existing is not None:
        return refuse(f"already released: release {release} is {existing.phase.value}", policy=policy, release=release)
    deployed = next((s for s in cluster.services if s.breed.deployable
                     and s.breed.deployable.definition.endswith("@" + push.digest)), None)
    ports = sorted(p for p in matching[0].breed.ports if p in cluster.gateways)
    if not ports:
        return refuse("the cluster has no gateway to release on (its breed has no port)", policy=policy)
    if len(ports) > 1:
        # A release moves one gateway; promoting it retires the stable service, which would move
        # the cluster's other ports from 0% to 100% at once, never checked: refused, not half-done.
        return refuse(f"the cluster serves {len(ports)} ports ({', '.join(ports)}): a release moves one "
                      f"gateway, and promoting it would switch the others at once unchecked; release the "
                      f"ports by hand", policy=policy, ports=ports)
    port = ports[0]
    routes = cluster.gateways[port].routes

    def weight(service) -> int:
        return weight_of(routes.get(service.name)) or 0

    stables = [s for s in matching if s is not deployed]
    if deployed is not None and (weight(deployed) > 0 or not stables):
        return refuse(f"digest already deployed (service {deployed.name})", policy=policy)
    stable = max(stables, key=weight)
    gateway = internal_name(dep.name, cname, port)
    holder = d.store.holder(namespace, gateway)
    if holder is not None:
        return refuse(f"release {holder} is running on gateway {gateway}", policy=policy, release=holder)
    canary = deployed.name if deployed is not None else _merge(push, namespace, store, dep, cname, cluster, stable,
                                                                   last)
    if isinstance(canary, dict):
        return refuse(**canary, policy=policy)
    body = {"name": release, "gateway": gateway, "stable": service_route(dep.name, cname, stable.name, port),
            "canary": service_route(dep.name, cname, canary, port), "policy": {"reference": policy}}
    from chalicelib.releases import operations as releases

    try:
        started = releases.start(d, namespace, body, resolve)
    except (Conflict, NotFound, ValidationFailed) as e:
        return refuse(f"release not started: {e}", policy=policy, release=release)
    return note(namespace, ["ecr:started", *tags, f"releases:{release}", f"gateways:{gateway}"],
                {**value, "policy": policy, "release": release, "id": started["id"], "gateway": gateway,
                 "stable": body["stable"], "canary": body["canary"]})


def _merge(push: Push, namespace: str, store, dep, cname: str, cluster, stable, last: bool) -> str | dict:
    """Merge the new breed version beside `stable` (0%: the cluster's routes already hold 100%);
    its name, or {"reason": ...} when the merge is refused. _Stale: another writer came first
    (unless this is the `last` attempt)."""
    base = stable.name.rsplit(":", 1)[0] if ":" in stable.name else stable.name
    name = f"{base}:{push.tag or push.short}"
    if cluster.service(name) is not None:  # the tag moved to another digest: the digest tells them apart
        name = f"{base}:{push.tag}-{push.short}" if push.tag else f"{base}:{push.short}-{len(cluster.services)}"
    breed = {**dsl.dump(stable.breed), "name": name,
             "deployable": {"type": stable.breed.deployable.type, "definition": f"{push.image}@{push.digest}"}}
    service: dict[str, Any] = {"breed": breed, "scale": {k: v for k, v in dsl.dump(stable.scale).items()
                                                         if k not in ("name", "metadata")}}
    dumped = stable.model_dump(mode="json", exclude_none=True)
    for field in ("environment_variables", "arguments", "health_checks", "network", "dialects"):
        if dumped.get(field) not in (None, {}, []):
            service[field] = dumped[field]
    body = {"name": dep.name, "clusters": {cname: {"services": [service]}}}
    publish = event_store().publish
    try:
        deployments.change(store, namespace, dep.name, body, "merge", publish)
    except Conflict as e:
        if not last:
            raise _Stale() from e
        return {"reason": f"breed {name} not merged: {e}"}
    except (ValidationFailed, NotFound) as e:
        return {"reason": f"breed {name} not merged: {e}"}
    try:
        from chalicelib.deployments import sync

        sync.sync_namespace(namespace, only=dep.name, publish=publish)
    except Exception:  # noqa: BLE001 - merged; the scheduled pass deploys it
        log.exception("synchronisation after merging %s into %s failed", name, dep.name)
    return name
