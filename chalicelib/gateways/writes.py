"""The gateway side of an artifact write: checks before, port claims and the generation bump in
the same transaction, and re-rendering + publishing the namespace after.

`artifacts.change` calls these for any batch touching gateways or what gateways refer to
(stored routes, conditions, rewrites). Import-light: the DSL, jinja2 and etcd3gw are imported
by the functions that need them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Callable

from chalicelib.errors import Conflict, FieldError, ValidationFailed
from chalicelib.gateways import ports as P
from chalicelib.gateways import publisher, spec
from chalicelib.gateways.ports import parse_port
from chalicelib.gateways.publisher import RouteTargets
from chalicelib.gateways.snapshot import GENERATION_KIND, GENERATION_NAME, generation_write
from chalicelib.gateways.spec import references
from chalicelib.retry import WRITE_RACE
from chalicelib.settings import parse_port_range, settings
from chalicelib.store import namespaces
from chalicelib.store.artifact_store import Write

log = logging.getLogger(__name__)

INPUT_KINDS = frozenset({"gateways", "routes", "conditions", "rewrites"})


def involved(writes: list[Write]) -> bool:
    return any(w.kind in INPUT_KINDS for w in writes)


# -- before: what the DSL accepts but HAProxy would not ----------------------------------------

def check(writes: list[Write], paths: list[str], resolve: Callable[[str, str], dict | None]) -> None:
    """ValidationFailed (400) for anything that could not become a valid HAProxy configuration."""
    # The DSL and the renderer build pydantic models: only for writes, not at cold start.
    from chalicelib import dsl
    from chalicelib.gateways import egress, haproxy
    from chalicelib.gateways.acl import RenderError, check_condition, check_new_path

    errors: list[FieldError] = []
    vhost_port = settings().virtual_hosts_port
    for w, path in zip(writes, paths):
        if w.kind not in INPUT_KINDS or w.document is None:
            continue
        at = path or "name"
        try:
            model = dsl.parse(w.kind, w.document)
            if w.kind == "gateways":
                gateway = spec.from_model(model, resolve)
                errors += _egress_errors(gateway, path, egress)
                haproxy.check_gateway(gateway, vhost_port)
            elif w.kind == "routes":
                route = spec._route(w.name, model, resolve)
                for node in [route.condition, *(c for _, c in route.rewrites)]:
                    if node is not None:
                        check_condition(node)
                for new_path, _ in route.rewrites:
                    check_new_path(new_path)
            elif w.kind == "conditions":
                check_condition(model.tree)
            elif w.kind == "rewrites":
                check_new_path(model.new_path)
                check_condition(model.condition)
        except RenderError as error:
            where = ".".join(p for p in (path, error.path) if p) if w.kind == "gateways" else path
            errors.append(FieldError(where or at, str(error)))
    if errors:
        raise ValidationFailed("Invalid input", errors)


def _egress_errors(gateway, path: str, egress) -> list[FieldError]:
    """External routes to what the egress policy refuses (the metadata service, loopback,
    private ranges the operator did not admit, names resolving there): docs/decisions/0025."""
    errors = []
    for route in gateway.routes:
        if route.external is None:
            continue
        try:
            egress.check_route(route.external[0])
        except egress.Refused as refused:
            errors.append(FieldError(".".join(p for p in (path, "routes", route.name) if p), str(refused)))
    return errors


# -- the transaction: claims and the generation ------------------------------------------------

def apply(store, namespace: str, writes: list[Write]):
    """store.apply with the namespace's port claims and generation bump in the same transaction,
    retried when only those lost a race. Returns what store.apply returns for `writes`."""
    return apply_counted(store, namespace, writes)[0]


def apply_counted(store, namespace: str, writes: list[Write]):
    """`apply`, and the namespace generation the transaction produced: the generation whose
    acknowledgement by the agents says the write is live (a release waits on it)."""
    with _writing(namespace):
        for attempt in WRITE_RACE.attempts_iter():
            # The plan's own conflicts are final (a stale If-Match, a port another gateway holds).
            planned, extra = _plan(store, namespace, writes)
            try:
                stored = store.apply(namespace, planned + extra)
            except Conflict:  # someone else's claim or generation got there first: plan again
                if attempt == WRITE_RACE.attempts - 1:
                    raise
                continue
            return stored[:len(planned)], stored[-1].version  # the generation is the last write (_plan)
    raise AssertionError("unreachable")  # WRITE_RACE.attempts >= 1


_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def _writing(namespace: str) -> threading.RLock:
    """One gateway write of a namespace at a time in this process. Every write of a namespace
    bumps its generation, so concurrent writers of one process only made each other plan again
    (50 threads of the local API: 8 attempts each, most then a 409); queued, each plans once.
    Across processes (Lambdas) the transaction's conditions still decide. A Lambda serves one
    request at a time: the lock is always free there."""
    with _locks_guard:
        return _locks.setdefault(namespace, threading.RLock())


def _plan(store, namespace: str, writes: list[Write]) -> tuple[list[Write], list[Write]]:
    s = settings()
    keys = [(w.kind, w.name) for w in writes] + [(GENERATION_KIND, GENERATION_NAME)]
    current = store.get_many(namespace, keys)
    planned: list[Write] = []
    for w in writes:
        stored = current.get((w.kind, w.name))
        if w.expected_version is None and stored is not None and w.document is not None:
            raise Conflict(f"{w.kind}/{w.name} already exists", [FieldError("name", "already exists")],
                           current_version=stored.version)
        if w.expected_version not in (None, 0) and (stored is None or stored.version != w.expected_version):
            raise Conflict(f"{w.kind}/{w.name} was changed by someone else",
                           [FieldError("version", f"expected {w.expected_version}")],
                           current_version=stored.version if stored else None)
        # Pin "any version" to the one read here: what the claims below were planned against.
        if w.expected_version == 0 and stored is not None:
            w = replace(w, expected_version=stored.version)
        planned.append(w)
    gateway_writes = [w for w in planned if w.kind == "gateways"]
    extra: list[Write] = []
    if gateway_writes:
        claims = {int(a.document["port"]): a.document for a in store.all_of_kind(namespace, P.CLAIM_KIND)}
        span = parse_port_range(s.gateway_ports)
        taken = set(claims) | P.policy(s).unassignable(span)  # reserved ports, the virtual hosts port
        for i, w in enumerate(planned):
            if w.kind != "gateways":
                continue
            stored = current.get((w.kind, w.name))
            old = _port(stored.document) if stored else None
            old_owned = old is not None and claims.get(old[0], {}).get("gateway") == w.name
            if w.document is None:  # a delete frees its port
                if old_owned:
                    extra.append(Write(P.CLAIM_KIND, str(old[0]), None, 0))
                continue
            new = _port(w.document)
            if new is None:  # kept from the stored gateway, else assigned
                number = old[0] if old else P.choose_free(span, taken)
                if number is None:
                    raise Conflict(f"no free gateway port left in {s.gateway_ports}", [FieldError("port", "none free")])
                new = (number, old[1] if old else "http")
                planned[i] = w = replace(w, document=_with_port(w.document, P.format_port(*new)))
            if new[0] == s.virtual_hosts_port:
                raise ValidationFailed.at("port", f"port {new[0]} is the virtual hosts port")
            owner = claims.get(new[0], {}).get("gateway")
            if owner is not None and owner != w.name:
                raise Conflict(f"port {new[0]} is already used by gateway {owner}",
                               [FieldError("port", f"used by gateway {owner}")])
            if owner is None:
                extra.append(Write(P.CLAIM_KIND, str(new[0]), _claim(new[0], w.name), None))
            taken.add(new[0])
            if old_owned and old[0] != new[0]:
                extra.append(Write(P.CLAIM_KIND, str(old[0]), None, 0))
    generation = current.get((GENERATION_KIND, GENERATION_NAME))
    extra.append(generation_write(namespace, generation.version if generation else 0))
    return planned, extra


def _with_port(doc: dict, port: str) -> dict:
    """The document with its port where the canonical dump puts it (after the header)."""
    head = {k: doc[k] for k in ("name", "kind", "metadata") if k in doc}
    return {**head, "port": port, **{k: v for k, v in doc.items() if k not in head}}


def _claim(port: int, gateway: str) -> dict:
    return {"port": str(port), "gateway": gateway}


def _port(doc: dict | None) -> tuple[int, str] | None:
    raw = (doc or {}).get("port")
    return parse_port(raw) if raw else None


# -- after: render, publish, tell --------------------------------------------------------------

@dataclass(frozen=True)
class PublishFailed:
    """`after` could not publish: the write is stored, etcd does not have it (yet)."""

    error: str


def after(store, namespace: str, outcomes: list, publish_events: Callable[[str, list[dict]], None],
          targets: RouteTargets):
    """Re-render and publish the namespace (when an etcd endpoint is set); events per gateway.
    Never raises: the write is done, and the next one (or the scheduled pass) publishes whatever
    this one could not. A failure is an event (`gateways:<name>`, `publish-failed`) and is
    returned (PublishFailed), so a release can show it."""
    if not publisher.publishing(settings()):
        return None
    try:
        namespaces.register("gateways", namespace)  # the scheduled republish visits it

        snap, result = publisher.publish_namespace(store, namespace, targets)
    except Exception as e:
        log.exception("namespace %s: configuration not published", namespace)
        failed = PublishFailed(f"{type(e).__name__}: {str(e)[:300]}")
        _tell_failure(namespace, outcomes, publish_events, failed)
        return failed
    try:
        publish_events(namespace, _events(snap, outcomes, result))
    except Exception:
        log.exception("namespace %s: gateway events not published", namespace)
    return result


def _tell_failure(namespace: str, outcomes: list, publish_events: Callable[[str, list[dict]], None],
                  failed: PublishFailed) -> None:
    from chalicelib.store.event_store import new_event  # pydantic: only once something was written

    names = sorted({o.name for o in outcomes if o.kind == "gateways"}) or ["*"]
    try:
        publish_events(namespace, [new_event([f"gateways:{name}", "publish-failed"], {"error": failed.error})
                                   for name in names])
    except Exception:
        log.exception("namespace %s: publish-failed events not published", namespace)


def _events(snap, outcomes: list, result) -> list[dict]:
    from chalicelib.store.event_store import new_event  # pydantic: only once something was written

    value = {"generation": result.generation, "checksum": result.checksum}
    tags: dict[str, str] = {}
    changed = {(o.kind, o.name) for o in outcomes if o.kind != "gateways"}
    for o in outcomes:
        if o.kind == "gateways":
            tags[o.name] = "undeployed" if o.artifact is None else "deployed"
    if changed:
        for doc in snap.gateways:
            refs = references([doc])
            refs |= references([snap.referenced[k] for k in refs if k in snap.referenced])
            if refs & changed:
                tags.setdefault(doc["name"], "deployed")
    return [new_event([f"gateways:{name}", state], value) for name, state in tags.items()]
