"""Synchronisation: what each deployment wants against what its driver runs.

Run after every change (for that deployment) and on a schedule (every deployment of every
namespace). A pass reads the namespace's deployment summaries (one small item per deployment,
written in every transaction that writes the deployment: docs/decisions/0034) and asks the
driver once what it runs (`running`: key -> spec digest). A deployment whose services are all
`done` with the digest the driver runs, and with no retry pending, costs nothing more: its
document is not read, no status call, no write. The others are read, then, in dependency order:

- deployment intended: build the driver spec (environment resolved against the internal
  gateways' ports); deploy when the driver runs another digest (or nothing); then the driver's
  status decides: running -> `done` with its instances (the gateways route to them), deploying
  -> `updating` with the driver's reason, failed -> `failed` with the reason.
- undeployment intended: undeploy; gone -> removed from the deployment (and the deployment
  with its gateways when nothing is left).
- A failure (driver error, unresolvable environment) is `failed` with the reason, retried on
  later passes with capped exponential backoff (5 s doubling to 5 min): never stuck forever.

Each change is one conditional write of the deployment (with the gateway generation bump when
instances changed, and publishing); a concurrent writer wins and the next pass retries.
Events: `synchronization:deployed|redeploy|undeployed` tagged `deployments:<d>`,
`clusters:<c>`, `services:<s>`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from chalicelib.deployments import implied_gateways as G
from chalicelib.deployments.environment import EnvironmentError_, dependencies, environment, order
from chalicelib.deployments.model import DeployedInstance, load, set_phase
from chalicelib.deployments.operations import KIND, namespaces, stored_gateways, summary_of, write
from chalicelib.deployments.secrets import SecretSource
from chalicelib.deployments.slice import prune
from chalicelib.drivers import driver_for
from chalicelib.drivers.base import DriverError, HealthCheckSpec, PortSpec, ServiceSpec, service_key
from chalicelib.dsl.units import port_number, port_type
from chalicelib.errors import Conflict
from chalicelib.retry import SYNC_FAILURE
from chalicelib.settings import settings
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import new_event

log = logging.getLogger(__name__)

Publish = Callable[[str, list[dict]], None]


@dataclass
class Pass:
    deployments: int = 0
    changed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"deployments": self.deployments, "changed": self.changed, "errors": self.errors}


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def backoff(attempts: int) -> float:
    return SYNC_FAILURE.delay(max(0, attempts - 1))


def gateway_host() -> str:
    bind = settings().gateway_bind
    return "127.0.0.1" if bind in ("0.0.0.0", "*", "", "node") else bind


def service_spec(dep, cname: str, service, ports: dict[tuple[str, str], int], host: str,
                 secrets: SecretSource | None = None):
    """The driver spec of a service (ValueError with the reason when it cannot be built), its
    secret references read through `secrets` (every driver gets their values this way)."""
    secrets = secrets if secrets is not None else SecretSource()
    breed = service.breed
    # References name a breed's variable; the container sees its alias (`timeout[TIME_OUT]`).
    env = {breed.container_name(k): v for k, v in environment(dep, cname, service, host, ports, secrets=secrets).items()}
    cluster = dep.clusters[cname]
    checks = service.health_checks if service.health_checks is not None else (
        cluster.health_checks if cluster.health_checks is not None else breed.health_checks)
    dialects = {**dep.dialects, **cluster.dialects, **service.dialects}
    return ServiceSpec(
        deployment=dep.name, cluster=cname, service=service.name,
        deployable_type=breed.deployable.type, definition=breed.deployable.definition,
        ports=tuple(PortSpec(n, port_number(p), port_type(p)) for n, p in breed.ports.items()),
        env=env, sealed_env=secrets.seal(env) if secrets.used else None,
        secret_sources=secrets.value_sources(env) if secrets.used else {},
        arguments=tuple((k, v) for a in [*breed.arguments, *service.arguments] for k, v in a.items()),
        cpu=service.scale.cpu, memory=service.scale.memory, instances=service.scale.instances,
        health_checks=tuple(HealthCheckSpec(h.port, h.path, h.protocol, h.initial_delay, h.timeout, h.interval,
                                            h.failures) for h in checks),
        dialects=dialects,
        labels={"deployment": dep.name, "cluster": cname, "service": service.name},
    )


def _quiet(dep, running: dict | None, now: datetime) -> bool:
    """Nothing to do: every service done, deployed with the digest the driver runs, no retry due."""
    if running is None:
        return False
    for cname, _, s in dep.services():
        if not s.deploying or s.status.phase.name != "done":
            return False
        if running.get(service_key(dep.name, cname, s.name)) != s.digest:
            return False
    return True


def quiet(name: str, summary: dict, running: dict | None) -> bool:
    """`_quiet` on a deployment's summary (operations.summary_of): what the pass decides without
    reading the document."""
    if running is None or not summary["settled"]:
        return False
    return all(running.get(service_key(name, c, s)) == digest for c, s, digest in summary["services"])


def _quiet_raw(doc: dict, running: dict | None) -> bool:
    """`_quiet` on the stored JSON, before paying for the model."""
    return quiet(doc.get("name"), summary_of(doc), running)


def run_all(publish: Publish | None = None) -> dict[str, Pass]:
    """The scheduled pass: every namespace that has deployments."""
    return {ns: sync_namespace(ns, publish=publish) for ns in namespaces()}


def _default_publish(namespace: str, events: list[dict]) -> None:
    event_store().publish(namespace, events)


def sync_namespace(namespace: str, *, store=None, driver=None, publish: Publish | None = None,
                   only: str | None = None) -> Pass:
    store = store or DynamoDBArtifactStore()
    driver = driver or driver_for(namespace)
    publish = publish or _default_publish
    result = Pass()
    running = driver.running(namespace)
    items = [store.get(namespace, KIND, only)] if only else _not_quiet(store, namespace, running, result)
    for stored in items:
        if stored is None:
            continue
        result.deployments += 1
        try:
            if sync_deployment(store, namespace, stored, driver, running, publish):
                result.changed += 1
            else:
                result.skipped += 1
        except Conflict:
            result.errors.append(f"{stored.name}: changed concurrently; next pass")
        except Exception as e:  # noqa: BLE001 - one deployment never stops the others
            log.exception("sync of %s/%s failed", namespace, stored.name)
            result.errors.append(f"{stored.name}: {e}")
    return result


def _not_quiet(store, namespace: str, running: dict | None, result: Pass) -> list:
    """The deployments the pass must read: those whose summary is not quiet. The quiet ones are
    counted (deployments, skipped) and cost their summary's share of one Query. When some
    deployment has no summary (stored before summaries existed, or dropped by a restore), every
    document is read as before and the missing or differing summaries are written."""
    found = store.summaries(namespace, KIND)
    if found.complete:
        names = [n for n, (_, summary) in found.items.items() if not quiet(n, summary, running)]
        quiet_ones = len(found.items) - len(names)
        result.deployments += quiet_ones
        result.skipped += quiet_ones
        read = store.get_many(namespace, [(KIND, n) for n in names]) if names else {}
        return [read[(KIND, n)] for n in names if (KIND, n) in read]
    items = store.all_of_kind(namespace, KIND)
    if len(items) != found.total:
        log.warning("%s: %d deployments counted, %d stored: each pass reads every document until they agree",
                    namespace, found.total, len(items))
    for stored in items:
        summary = summary_of(stored.document)
        if found.items.get(stored.name) != (stored.version, summary):
            try:  # False: written since, with its own; an error: the next pass reads it again
                store.put_summary(namespace, KIND, stored.name, stored.version, summary)
            except Exception:  # noqa: BLE001 - a missing summary costs reads, never a pass
                log.exception("summary of %s/%s not written", namespace, stored.name)
    return items


def sync_deployment(store, namespace: str, stored, driver, running: dict | None, publish: Publish,
                    clock: datetime | None = None) -> bool:
    """One deployment; True when something was written."""
    if _quiet_raw(stored.document, running):
        return False
    now = clock or datetime.now(timezone.utc)
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    dep = load(stored.document)
    if _quiet(dep, running, now):
        return False
    before = dep.model_copy(deep=True)
    events: list[dict] = []

    def event(kind: str, cname: str, sname: str) -> None:
        events.append(new_event([f"synchronization:{kind}", f"deployments:{dep.name}", f"clusters:{cname}",
                                 f"services:{sname}"], {"deployment": dep.name, "cluster": cname, "service": sname}))

    def due(s) -> bool:
        return s.retry_at is None or _parse_time(s.retry_at) <= now

    secrets = SecretSource()  # each secret read once in this pass; no reason shows one

    def fail(s, reason: str) -> None:
        reason = secrets.scrub(reason)
        s.attempts += 1
        s.retry_at = (now + timedelta(seconds=backoff(s.attempts))).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")
        set_phase(s, "failed", stamp, f"{reason} (attempt {s.attempts}; retry in {backoff(s.attempts):.0f}s)")

    gateway_docs = stored_gateways(store, namespace, list(G.documents(dep)))
    port_of = G.ports_of(gateway_docs)
    ports = {(c, p): port_of[G.internal_name(dep.name, c, p)]
             for c, cluster in dep.clusters.items() for p in cluster.ports()
             if G.internal_name(dep.name, c, p) in port_of}
    host = gateway_host()
    keys = [service_key(dep.name, c, s.name) for c, _, s in dep.services()]
    try:
        ranked = {node: i for i, node in enumerate(order(dep))}
    except EnvironmentError_ as e:
        ranked = {}
        for _, _, s in dep.services():
            if s.deploying and due(s):
                fail(s, str(e))
    statuses: dict[str, Any] = {}

    def status_of(key: str):
        if key not in statuses:
            statuses.update(driver.status(namespace, [k for k in keys if k not in statuses] or [key]))
        return statuses[key]

    services = sorted(dep.services(), key=lambda t: ranked.get((t[0], t[2].name), -1))
    for cname, cluster, s in services:
        key = service_key(dep.name, cname, s.name)
        runs = (running or {}).get(key) if running is not None else None
        if not s.deploying:
            if s.status.phase.name == "done":
                continue
            try:
                if running is None or key in running:
                    driver.undeploy(namespace, dep.name, cname, s.name)
                gone = status_of(key).state == "absent"
            except DriverError as e:
                fail(s, str(e))
                continue
            if gone:
                set_phase(s, "done", stamp)
                s.instances = []
                event("undeployed", cname, s.name)
            continue
        if s.status.phase.name == "done" and runs == s.digest and running is not None:
            continue
        if s.status.phase.name == "failed" and not due(s):
            continue
        if ranked and (cname, s.name) in ranked:
            waiting = [f"{c}/{n}" for c, n in dependencies(dep, cname, s)
                       if dep.clusters[c].service(n).status.phase.name != "done"]
            if waiting:
                set_phase(s, "initiated", stamp, "waiting for " + ", ".join(waiting))
                continue
        try:
            spec = service_spec(dep, cname, s, ports, host, secrets)
        except (EnvironmentError_, ValueError) as e:
            fail(s, str(e))
            continue
        digest = spec.digest()
        try:
            if runs != digest:
                if runs is not None:
                    event("redeploy", cname, s.name)
                driver.deploy(namespace, spec)
                statuses.pop(key, None)
                if running is not None:
                    running[key] = digest
            st = status_of(key)
        except DriverError as e:
            fail(s, str(e))
            continue
        s.digest = digest

        instances = [DeployedInstance(name=i.name, host=i.host, ports=i.ports, healthy=i.healthy)
                     for i in st.instances if i.healthy]
        if st.state == "running":
            if s.status.phase.name != "done":
                event("deployed", cname, s.name)
            s.attempts, s.retry_at = 0, None
            set_phase(s, "done", stamp)
        elif st.state == "failed":
            fail(s, st.reason or "failed")
        else:
            set_phase(s, "updating", stamp, secrets.scrub(st.reason))
        s.instances = instances
    after = prune(dep)
    if after == before:
        return False
    write(store, namespace, dep.name, before, after, stored.version, lambda ns, ev: publish(ns, ev))
    if events:
        try:
            publish(namespace, events)
        except Exception:  # noqa: BLE001
            log.exception("synchronization events not published")
    return True
