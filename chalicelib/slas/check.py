"""The SLA pass: every cluster with an SLA, checked by Vamp's rules, its escalations applied.

Run from the scheduled pass (jobs.every_minute, after synchronisation). Per namespace it reads
the deployment summaries (docs/decisions/0034) and stops there when no summary says `sla`; the
deployments that have one are read, and for each cluster with an SLA:

1. response_time_sliding_window, checked only when all the cluster's services are done
   (deployed, phase `done`, no retry pending) and no release runs on a gateway routing to the
   cluster (a canary's partial traffic is no reason to scale the stable side: the skip is
   published as a `slas:skipped` event); skipped while an `sla` event for the cluster exists
   within interval + cooldown. The figure: per cluster port, the mean of the agents'
   `metrics:responseTime` events of the internal gateway `<d>/<c>/<port>` over `interval`
   (gateways/telemetry.py's rule); the largest decides. Above `upper` -> `sla:escalate`, below
   `lower` -> `sla:deescalate` (tags `sla`, `deployments:<d>`, `clusters:<c>`; value: the figures).
2. Escalations: every `sla:escalate|deescalate` event of the cluster within the last
   LOOKBACK that no `escalations` event names yet (ours of step 1, or one a user or a workflow
   posted, which is how `escalation_only` SLAs act) is applied: rules.plan, then the deployments'
   own scale operation per changed service (the store, the summary, the gateways as for an API
   scale), then a synchronisation of that deployment (as the API's scale does). Each action is
   an `escalations` + `escalation:<type>` event with the figures (before, after, bounds, the SLA
   event that asked and its figures); one that changes nothing is an `escalation:none` event
   saying why. Generic escalations are published as `escalation:<type>` events only.
3. Generic SLA types are published each pass as an `sla:<type>` event (the workflows listening
   for them act; nothing here does).

What the pass publishes (SLA events, escalation marks, skips) triggers the workflows listening for
it, as POST /events does (workflows/triggers.publishing, decision 0044); the marks of an SLA event
a workflow run posted carry that run's chain, so they never trigger a workflow of it again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from chalicelib import dsl
from chalicelib.deployments import operations, sync
from chalicelib.deployments.model import Deployment, DeploymentCluster, load
from chalicelib.deployments.operations import KIND, summary_of
from chalicelib.dsl.escalation import Escalation, EscalationRef
from chalicelib.dsl.sla import Sla, SlaRef
from chalicelib.errors import Conflict, VampError
from chalicelib.gateways import telemetry
from chalicelib.settings import settings
from chalicelib.slas import rules
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery, format_timestamp, from_agents, new_event
from chalicelib.workflows import triggers

log = logging.getLogger(__name__)

Publish = Callable[[str, list[dict]], None]
# How far back SLA events wait for their escalation: a pass that did not run for longer than
# this (the schedule stopped) drops them rather than scale on an old figure.
LOOKBACK = timedelta(minutes=15)
RTSW = "response_time_sliding_window"


@dataclass
class Pass:
    checked: int = 0
    escalate: int = 0
    deescalate: int = 0
    actions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def summary(self) -> dict:
        return {"checked": self.checked, "escalate": self.escalate, "deescalate": self.deescalate,
                "actions": self.actions, "skipped": self.skipped, "errors": self.errors}


def _stamp(t: datetime) -> str:
    return format_timestamp(t)


def run_all(publish: Publish | None = None, writers=None) -> dict:
    """The scheduled pass: every namespace that has deployments. `writers`: what the built-in
    workflows these events trigger change (the handler layer's, workflows/builtin_runs.Writers)."""
    out = {}
    for ns in operations.namespaces():
        try:
            result = check_namespace(ns, publish=publish, writers=writers)
        except Exception as e:  # noqa: BLE001 - one namespace never stops the others; the next pass retries
            log.exception("sla pass of namespace %s failed", ns)
            out[ns] = {"error": str(e)}
            continue
        if result.checked or result.actions or result.skipped or result.errors:
            out[ns] = result.summary()
    return out


class _Namespace:
    """One namespace's outside world for a pass (tests pass their own driver and clock)."""

    def __init__(self, namespace: str, store, events, releases, driver, publish: Publish, now: datetime,
                 writers=None):
        self.ns, self.store, self.events, self.driver, self.now = namespace, store, events, driver, now
        self._releases_store, self._releases = releases, None
        self.publish = publish
        self._emit = triggers.publishing(store, publish, writers)

    def emit(self, events: list[dict], origin: tuple[str, ...] = ()) -> None:
        """Publish what the pass decided, and run the workflows listening for it (0044)."""
        self._emit(self.ns, events, origin)

    def running_releases(self) -> list:
        """The releases holding their gateway (one Query of the namespace's releases, once)."""
        if self._releases is None:
            store = self._releases_store
            if store is None:
                from chalicelib.releases.model import ReleaseState
                from chalicelib.store.dynamodb_releases import DynamoDBReleaseStore

                store = DynamoDBReleaseStore(ReleaseState)
            running = [r for r in store.list(self.ns) if r.holds_gateway]
            docs = operations.stored_gateways(self.store, self.ns, sorted({r.gateway for r in running}))
            self._releases = [(r, docs.get(r.gateway) or {}) for r in running]
        return self._releases

    def events_of(self, tags: list[str], since: datetime, type: str | None = None) -> list[dict]:
        out, page = [], 1
        while True:
            found = self.events.query(self.ns, EventQuery(tags=tags, type=type, gte=since, lte=self.now, page=page,
                                                          per_page=settings().per_page_max))
            out += found.items
            if page * settings().per_page_max >= found.total:
                return out
            page += 1


def check_namespace(namespace: str, *, store=None, events=None, releases=None, driver=None,
                    publish: Publish | None = None, clock: datetime | None = None, writers=None) -> Pass:
    store = store or DynamoDBArtifactStore()
    events = events or event_store()
    ctx = _Namespace(namespace, store, events, releases, driver, publish or events.publish,
                     clock or datetime.now(timezone.utc), writers)
    result = Pass()
    for stored in _with_sla(store, namespace):
        try:
            _deployment(ctx, stored, result)
        except Exception as e:  # noqa: BLE001 - one deployment never stops the others
            log.exception("sla pass of %s/%s failed", namespace, stored.name)
            result.errors.append(f"{stored.name}: {e}")
    return result


def _with_sla(store, namespace: str) -> list:
    """The deployments whose summary says `sla` (or predates the flag, or is missing): the idle
    pass's cost is this Query of summaries and the counter's GetItem. A summary without the flag
    is rewritten with it once read."""
    found = store.summaries(namespace, KIND)
    if not found.complete:
        items = store.all_of_kind(namespace, KIND)
        return [s for s in items if summary_of(s.document)["sla"]]
    names = [n for n, (_, summary) in found.items.items() if summary.get("sla", True)]
    read = store.get_many(namespace, [(KIND, n) for n in names]) if names else {}
    out = []
    for n in names:
        stored = read.get((KIND, n))
        if stored is None:
            continue
        version, summary = found.items[n]
        if "sla" not in summary and version == stored.version:
            try:  # the flag, so the next passes skip it when it has no SLA
                store.put_summary(namespace, KIND, n, stored.version, summary_of(stored.document))
            except Exception:  # noqa: BLE001 - a missing flag costs a read, never a pass
                log.exception("summary of %s/%s not rewritten", namespace, n)
        if summary_of(stored.document)["sla"]:
            out.append(stored)
    return out


def _resolver(ctx: _Namespace):
    cache: dict[tuple[str, str], Any] = {}

    def stored(kind: str, name: str):
        if (kind, name) not in cache:
            found = ctx.store.get(ctx.ns, kind, name)
            try:
                cache[(kind, name)] = dsl.parse(kind, found.document) if found else None
            except VampError:
                cache[(kind, name)] = None
        return cache[(kind, name)]

    def sla(value) -> Sla | None:
        if isinstance(value, SlaRef):
            found = stored("slas", value.reference)
            if found is None:
                return None
            # the cluster's escalations, when it gives some, replace the stored SLA's (Vamp's SlaReference)
            return found.model_copy(update={"escalations": value.escalations}) if value.escalations else found
        return value

    def escalation(value) -> Escalation | None:
        return stored("escalations", value.reference) if isinstance(value, EscalationRef) else value

    return sla, escalation


def _deployment(ctx: _Namespace, stored, result: Pass) -> None:
    dep = load(stored.document)
    resolve_sla, _ = _resolver(ctx)
    for cname, cluster in dep.clusters.items():
        if cluster.sla is None:
            continue
        sla = resolve_sla(cluster.sla)
        if sla is None:
            result.errors.append(f"{dep.name}/{cname}: sla {cluster.sla.reference} does not exist")
            continue
        if _cluster(ctx, dep, cname, sla, result):  # scaled: the next cluster sees what is stored now
            dep = load(operations.get(ctx.store, ctx.ns, dep.name).document)


def _tags(deployment: str, cluster: str) -> list[str]:
    return [f"deployments:{deployment}", f"clusters:{cluster}"]


def _release_on(ctx: _Namespace, dep: Deployment, cname: str) -> tuple[str, str] | None:
    """(release, gateway) of a running release on a gateway that routes to the cluster."""
    cluster = dep.clusters.get(cname)
    internal = {f"{dep.name}/{cname}/{p}" for p in (cluster.gateways if cluster else {})}
    prefix = f"{dep.name}/{cname}/"
    for release, doc in ctx.running_releases():
        routes = set(doc.get("routes") or {}) | {release.stable, release.canary}
        if release.gateway in internal or any(r in internal or r.startswith(prefix) for r in routes):
            return release.name, release.gateway
    return None


def _done(cluster: DeploymentCluster) -> bool:
    return bool(cluster.services) and all(
        s.deploying and s.status.phase.name == "done" and s.retry_at is None for s in cluster.services)


def _cluster(ctx: _Namespace, dep: Deployment, c: str, sla: Sla, result: Pass, decided: list[dict] | None = None) -> bool:
    """Check one cluster and apply its pending escalations; True when something was scaled.
    `decided`: SLA events decided outside the pass (an alarm's, `escalate`), applied instead of
    a check."""
    now, d = ctx.now, dep.name
    cluster = dep.clusters[c]
    held = _release_on(ctx, dep, c)
    if held is None:
        for target in {t for t in sla.targets() if t != c and t in dep.clusters}:
            held = held or _release_on(ctx, dep, target)
    if held is not None:
        result.skip("release")
        reason = f"release {held[0]} runs on gateway {held[1]}: no scaling decision from a canary's partial traffic"
        log.info("sla of %s/%s skipped: %s", d, c, reason)
        ctx.emit([new_event(["slas", "slas:skipped", *_tags(d, c)], {
            "deployment": d, "cluster": c, "reason": reason, "release": held[0], "gateway": held[1]}, timestamp=now)])
        return False
    window = sla.window
    quiet = timedelta(seconds=(window.interval + window.cooldown)) if window else timedelta(0)
    sla_events = ctx.events_of([f"deployments:{d}", "sla", f"clusters:{c}"], now - max(LOOKBACK, quiet))
    made: list[dict] = list(decided or [])
    if decided is not None:
        pass
    elif sla.generic:
        ctx.emit([new_event([f"sla:{sla.type}", *_tags(d, c)], {
            "deployment": d, "cluster": c, "type": sla.type, "parameters": sla.parameters or {}}, timestamp=now)])
    elif sla.type == RTSW:
        made = _check(ctx, d, c, dep, cluster, sla, sla_events, quiet, result)
    pending = [e for e in sorted(sla_events + made, key=lambda e: (e["timestamp"], e["id"])) if _direction(e)]
    return _escalate(ctx, d, c, sla, pending, result) if pending else False


def _direction(event: dict) -> str | None:
    tags = set(event.get("tags") or ())
    if "sla:escalate" in tags:
        return rules.ESCALATE
    if "sla:deescalate" in tags:
        return rules.DEESCALATE
    return None


def _check(ctx, d, c, dep, cluster, sla: Sla, sla_events: list[dict], quiet: timedelta, result: Pass) -> list[dict]:
    now = ctx.now
    if not _done(cluster):
        result.skip("services not done")
        return []
    since = _stamp(now - quiet)
    recent = [e for e in sla_events if e["timestamp"] >= since]
    if recent:
        result.skip("cooldown")
        return []
    result.checked += 1
    start = now - timedelta(seconds=sla.window.interval)
    times: dict[str, float] = {}
    samples: dict[str, int] = {}
    for port in cluster.gateways:
        gateway = f"{d}/{c}/{port}"
        found = from_agents(ctx.events_of(telemetry.tags_for(gateway, None, "responseTime"), start, type="metrics"))
        values = telemetry.own_values(found, None)
        mean = telemetry.metric_value("responseTime", values, [], sla.window.interval)
        if mean is not None:
            times[gateway], samples[gateway] = round(mean, 3), len(values)
    direction = rules.decide(times, sla.threshold.upper, sla.threshold.lower)
    if direction is None:
        if not times:
            result.skip("no metrics")
        return []
    setattr(result, direction, getattr(result, direction) + 1)
    event = new_event([f"sla:{direction}", "sla", *_tags(d, c)], {
        "deployment": d, "cluster": c, "type": RTSW, "response_time": max(times.values()),
        "response_times": times, "samples": samples,
        "threshold": {"upper": sla.threshold.upper, "lower": sla.threshold.lower},
        "window": {"interval": sla.window.interval, "cooldown": sla.window.cooldown,
                   "from": _stamp(start), "to": _stamp(now)}}, timestamp=now)
    ctx.emit([event])
    return [event]


def _handled(ctx: _Namespace, d: str, c: str, since: datetime) -> set[str]:
    return {(e.get("value") or {}).get("sla_event") for e in ctx.events_of(["escalations", *_tags(d, c)], since)
            if isinstance(e.get("value"), dict)}


def _escalate(ctx: _Namespace, d: str, c: str, sla: Sla, pending: list[dict], result: Pass) -> bool:
    handled = _handled(ctx, d, c, ctx.now - LOOKBACK - timedelta(minutes=1))
    _, resolve_escalation = _resolver(ctx)
    scaled = False
    for event in pending:
        if event["id"] in handled:
            continue
        handled.add(event["id"])
        direction = _direction(event)
        stored = operations.get(ctx.store, ctx.ns, d)
        dep = load(stored.document)
        scales = {name: (s.name, {"instances": float(s.scale.instances), "cpu": float(s.scale.cpu),
                                  "memory": float(s.scale.memory)})
                  for name, cl in dep.clusters.items()
                  for s in [next((x for x in cl.services if x.deploying), None)] if s is not None}
        plan = rules.plan(c, sla.escalations, direction, scales, resolve_escalation)
        why = {"sla_event": event["id"], "direction": direction, "sla": event.get("value")}
        try:
            _apply(ctx, d, dep, plan)
        except Conflict:  # written concurrently: the event stays pending for the next pass
            result.errors.append(f"{d}/{c}: deployment changed concurrently; escalation on the next pass")
            return scaled
        scaled = scaled or bool(plan.actions)
        # Stamped with the pass's time, which the next pass's queries are bounded by.
        marks = [new_event(["escalations", f"escalation:{a.escalation}", *_tags(d, c)], {**why, **a.figures()},
                           timestamp=ctx.now) for a in plan.actions]
        marks += [new_event(["escalations", f"escalation:{g['type']}", *_tags(d, c)], {**why, "generic": g},
                            timestamp=ctx.now) for g in plan.generic]
        if not plan.actions:
            marks.append(new_event(["escalations", "escalation:none", *_tags(d, c)], {
                **why, "why": plan.refused or "no scale escalation", "generic": len(plan.generic)}, timestamp=ctx.now))
        result.actions += len(plan.actions)
        for a in plan.actions:
            log.info("escalation %s of %s/%s: %s %s %s -> %s", direction, d, c, a.cluster, a.field,
                     a.before, a.after)
        ctx.emit(marks, triggers.chain_of(event))
        if plan.actions:
            try:
                sync.sync_namespace(ctx.ns, store=ctx.store, driver=ctx.driver, publish=ctx.publish, only=d)
            except Exception:  # noqa: BLE001 - the scale is stored; the next scheduled pass deploys it
                log.exception("synchronisation after the escalation of %s/%s failed", d, c)
    return scaled


def _apply(ctx: _Namespace, d: str, dep: Deployment, plan: rules.Plan) -> None:
    """One scale write per changed service, through the deployments' own operation."""
    changed: dict[tuple[str, str], dict] = {}
    for a in plan.actions:
        service = dep.clusters[a.cluster].service(a.service)
        scale = changed.setdefault((a.cluster, a.service), {
            "instances": service.scale.instances, "cpu": service.scale.cpu, "memory": service.scale.memory})
        scale[a.field] = int(a.after) if a.field == "instances" else a.after
    for (cname, sname), scale in changed.items():
        operations.scale(ctx.store, ctx.ns, d, cname, sname, scale, ctx.publish)  # memory: a bare number is MB


# --- escalations asked for from outside the pass (0044): a CloudWatch alarm naming the cluster
def escalate(namespace: str, deployment: str, cluster: str, direction: str, figures: dict, *, source: str,
             extra_tags: tuple[str, ...] = (), store=None, events=None, releases=None, driver=None,
             publish: Publish | None = None, clock: datetime | None = None, writers=None) -> dict:
    """Escalate (or de-escalate) the cluster's SLA as an `sla:escalate|deescalate` of the check
    would, by the same rules: refused within interval + cooldown of the cluster's last `sla`
    event (the SLA's window; none for `escalation_only` and generic types) and once per `source`
    (a redelivery finds its own event); then applied as the pass applies its own (bounds, `to_one`
    order, waiting while a release holds a gateway routing to the cluster), each action an
    `escalation:*` event carrying `figures`. Returns {outcome, reason | sla_event, actions}."""
    if direction not in (rules.ESCALATE, rules.DEESCALATE):
        raise ValueError(direction)
    store = store or DynamoDBArtifactStore()
    events = events or event_store()
    ctx = _Namespace(namespace, store, events, releases, driver, publish or events.publish,
                     clock or datetime.now(timezone.utc), writers)
    stored = store.get(namespace, KIND, deployment)
    dep = load(stored.document) if stored is not None else None
    if dep is None or cluster not in dep.clusters:
        return {"outcome": "refused", "reason": f"no cluster {cluster} in a deployment {deployment}"}
    if dep.clusters[cluster].sla is None:
        return {"outcome": "refused", "reason": f"cluster {deployment}/{cluster} has no SLA"}
    resolve_sla, _ = _resolver(ctx)
    sla = resolve_sla(dep.clusters[cluster].sla)
    if sla is None:
        return {"outcome": "refused", "reason": f"the SLA of {deployment}/{cluster} does not exist"}
    window = sla.window
    quiet = timedelta(seconds=(window.interval + window.cooldown)) if window else timedelta(0)
    earlier = ctx.events_of([f"deployments:{deployment}", "sla", f"clusters:{cluster}"], ctx.now - max(LOOKBACK, quiet))
    if any(isinstance(e.get("value"), dict) and e["value"].get("source") == source for e in earlier):
        return {"outcome": "duplicate", "reason": f"{source} was already acted on"}
    since = _stamp(ctx.now - quiet)
    recent = [e for e in earlier if e["timestamp"] >= since]  # the check's own rule (_check)
    if quiet and recent:
        return {"outcome": "refused", "reason": f"within the SLA's interval + cooldown ({int(quiet.total_seconds())} s) "
                                                f"of sla event {recent[-1]['id']}", "sla_event": recent[-1]["id"]}
    event = new_event([f"sla:{direction}", "sla", *_tags(deployment, cluster), *extra_tags], {
        "deployment": deployment, "cluster": cluster, "type": sla.type, "source": source, **figures},
        timestamp=ctx.now)
    ctx.emit([event])
    result = Pass()
    setattr(result, direction, 1)
    _cluster(ctx, dep, cluster, sla, result, decided=[event])
    if result.skipped.get("release"):
        return {"outcome": "waiting", "sla_event": event["id"],
                "reason": "a release runs on a gateway routing to the cluster: applied once it is over"}
    return {"outcome": "applied", "sla_event": event["id"], "actions": result.actions, "errors": result.errors}
