"""The state machine's tasks (app.py's lambda functions call these) and the release
transitions the API's operations share with them.

Each task takes the execution's document `{namespace, name, id, interval, step, check, next}`
and returns it updated; the state machine routes on `next`. Idempotent: a check is keyed by
(release id, check number) and a weight by (release id, step number), both carried in the
document; a retried invocation finds its key already recorded in the release state and returns
what the first one decided, without applying anything twice.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from chalicelib.deployments import operations as deployments
from chalicelib.deployments.sync import sync_namespace
from chalicelib.gateways import nodes
from chalicelib.gateways.nodes import Liveness
from chalicelib.releases import webhooks
from chalicelib.releases.analysis import FAIL, PASS
from chalicelib.releases.analysis import analyse as judge
from chalicelib.releases.decisions import APPROVAL, decide
from chalicelib.releases.machine import StepFunctionsMachine
from chalicelib.releases.metrics import EventMetricSource, MetricSource
from chalicelib.releases.model import (
    ACTIVE,
    FINISHING,
    TERMINAL,
    Check,
    CheckOutcome,
    LastCheck,
    Phase,
    ReleaseState,
    now,
)
from chalicelib.releases.router import Fenced, GatewayRouter, WeightChange
from chalicelib.settings import settings
from chalicelib.store.dynamodb_releases import DynamoDBReleaseStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventStore, new_event
from chalicelib.store.node_store import DynamoDBNodeStore
from chalicelib.store.release_store import ReleaseStore

log = logging.getLogger(__name__)
STOP, WAIT, DONE, PAUSE = "stop", "wait", "done", "pause"
# Not live yet: look at the nodes again after `poll` seconds (analyse: WaitLive; promote and
# rollback: their own Wait state, then the same task again).
AWAIT_LIVE, AWAIT = "await_live", "await"


def node_liveness(namespace: str, generation: int) -> Liveness:
    """The gateway nodes' acknowledgements of `generation` (docs/decisions/0018)."""
    s = settings()
    return nodes.live(DynamoDBNodeStore(s.node_ttl), namespace, generation, time.time(), s.node_silent_after)


@dataclass
class Deps:
    """The outside world of a release, each behind a small interface (tests swap them)."""

    store: ReleaseStore[ReleaseState]
    router: GatewayRouter
    metrics: MetricSource
    events: EventStore
    machine: StepFunctionsMachine
    call_hook: Callable[..., webhooks.HookResult] = field(default=webhooks.call)
    clock: Callable[[], str] = field(default=now)
    liveness: Callable[[str, int], Liveness] = field(default=node_liveness)


def default_deps() -> Deps:
    events = event_store()
    return Deps(store=DynamoDBReleaseStore(ReleaseState), router=GatewayRouter(events=events),
                metrics=EventMetricSource(events), events=events, machine=StepFunctionsMachine())


# Tests and the bench replace this to observe or break the outside world.
deps_factory: Callable[[], Deps] = default_deps


def publish(d: Deps, state: ReleaseState, tag: str, value: dict) -> None:
    try:
        d.events.publish(state.namespace, [new_event(
            tags=[f"releases:{state.name}", f"gateways:{state.gateway}", f"release:{tag}"],
            value={"id": state.id, "phase": state.phase.value, "step": state.step, "weight": state.weight, **value},
            type="release")])
    except Exception:  # the history is best effort; the state is the truth
        log.exception("release event %s not published for %s", tag, state.name)


def _current(d: Deps, doc: dict) -> ReleaseState | None:
    state = d.store.get(doc["namespace"], doc["name"])
    return state if state is not None and state.id == doc["id"] else None


def _elsewhere(state: ReleaseState | None) -> str:
    """Where the execution goes when the release is no longer checking: a promotion or rollback
    begun by the API is finished by the execution (it is done only once the nodes applied it)."""
    if state is not None and state.phase == Phase.ROLLING_BACK:
        return "rollback"
    if state is not None and state.phase == Phase.PROMOTING:
        return "promote"
    return STOP


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _note_publish(d: Deps, state: ReleaseState, change: WeightChange) -> None:
    if change.publish_error:
        publish(d, state, "publish-failed", {"generation": change.generation, "error": change.publish_error})


def _fence(d: Deps, namespace: str, name: str, release_id: str, phases: Collection[Phase]) -> Callable[[], None]:
    def check() -> None:
        state = d.store.get(namespace, name)
        if state is None or state.id != release_id or state.phase not in phases:
            raise Fenced(f"release {name} is {state.phase if state else 'gone'}")
    return check


# -- analyse: one check, and the decision that follows -----------------------------------------

def analyse(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    state = _current(d, doc)
    if state is None or state.phase not in ACTIVE:
        return {**doc, "next": _elsewhere(state)}
    number = int(doc["check"])
    if state.checks >= number and state.last is not None and state.last.check == number:
        return {**doc, **state.last.out.model_dump()}  # a retry: what the first invocation decided
    if state.phase == Phase.PAUSED:
        return {**doc, "next": PAUSE}
    plan = state.plan
    step, until = state.step, d.clock()
    not_live = None
    if step >= 1 and state.generation is not None and state.live_since is None:
        not_live, out = _await_live(d, doc, state, until)
        if out is not None:
            return out
    if step == 0:
        check = {"verdict": PASS, "reason": "before rollout", "results": []}
        gate = plan.hooks("before_rollout")
    elif not_live is not None:
        reason = f"weight {state.weight}% {not_live.describe()} within {plan.apply_timeout}s"
        if state.publish_error:
            reason += f"; publishing failed: {state.publish_error}"
        check, gate = {"verdict": FAIL, "reason": reason, "results": []}, []
    else:
        canary = d.metrics.route(doc["namespace"], state.gateway, state.canary, state.since, until, plan.latency_percentile)
        stable = d.metrics.route(doc["namespace"], state.gateway, state.stable, state.since, until, plan.latency_percentile)
        check = judge(plan, canary, stable, state.weight)
        gate = plan.hooks("before_promotion" if step >= plan.steps else "before_increase")
    if check["verdict"] == PASS and gate:
        results = webhooks.run(gate, state, d.call_hook)
        check["webhooks"] = [r.as_dict() for r in results]
        failed = [r for r in results if not r.ok]
        if failed:
            check["verdict"] = FAIL
            check["reason"] = "; ".join(f"webhook {r.name}: {r.reason}" for r in failed)
    decision = decide(plan, step, state.failures, state.inconclusive, check["verdict"], approved=state.approved)
    record = Check(number=number, step=step, weight=state.weight, since=state.since, until=until, **check,
                   failures=decision.failures, decision=decision.next, decision_reason=decision.reason)
    out = CheckOutcome(step=decision.step, check=number + 1, next=decision.next)

    def change(s: ReleaseState) -> ReleaseState | None:
        if s.id != doc["id"] or s.checks >= number or s.phase not in ACTIVE:
            return None
        s.checks, s.failures, s.inconclusive = number, decision.failures, decision.inconclusive
        s.since, s.last, s.reason = until, LastCheck(check=number, out=out), decision.reason
        s.record(record)
        if decision.next == APPROVAL:
            s.phase = Phase.AWAITING_APPROVAL
        return s

    stored, changed = d.store.transition(doc["namespace"], doc["name"], change)
    if not changed:  # someone else moved the release on meanwhile: follow what is stored
        if stored.id != doc["id"] or stored.phase not in ACTIVE:
            return {**doc, "next": _elsewhere(stored if stored.id == doc["id"] else None)}
        if stored.last is not None and stored.last.check == number:
            return {**doc, **stored.last.out.model_dump()}
        return {**doc, "next": WAIT}
    publish(d, stored, "check", {"check": record.model_dump(mode="json")})
    if decision.next == APPROVAL:
        publish(d, stored, Phase.AWAITING_APPROVAL, {"reason": decision.reason})
    return {**doc, **out.model_dump()}


def _await_live(d: Deps, doc: dict, state: ReleaseState, until: str) -> tuple[Liveness | None, dict | None]:
    """A step is judged only once its weight is live: every reporting node acknowledged the
    generation that carries it. (None, out) while waiting or once it became live (the first
    check then covers an interval of live traffic); (liveness, None) past the policy's
    apply_timeout: the caller fails the check."""
    plan, namespace = state.plan, doc["namespace"]
    live = d.liveness(namespace, state.generation)
    if live.live:
        def became_live(s: ReleaseState) -> ReleaseState | None:
            if s.id != doc["id"] or s.phase not in ACTIVE or s.generation != state.generation or s.live_since:
                return None
            return s.model_copy(update={"live_since": until, "since": until, "waiting": None})

        stored, changed = d.store.transition(namespace, doc["name"], became_live)
        if changed:
            publish(d, stored, "live", {"generation": state.generation, "nodes": live.applied})
        return None, {**doc, "next": WAIT}
    # etcd may be back: publish what the store holds (cheap when etcd is up to date).
    error = d.router.republish(namespace)
    if _seconds(state.since, until) >= plan.apply_timeout:
        return live, None
    waiting = f"weight {state.weight}% not live yet: {live.describe()}"

    def note(s: ReleaseState) -> ReleaseState | None:
        if s.id != doc["id"] or s.phase not in ACTIVE or (s.waiting == waiting and s.publish_error == error):
            return None
        return s.model_copy(update={"waiting": waiting, "publish_error": error or s.publish_error})

    d.store.transition(namespace, doc["name"], note)
    return None, {**doc, "next": AWAIT_LIVE, "poll": plan.poll_after(_seconds(state.since, until))}


# -- set weight: the step the analysis chose ---------------------------------------------------

def set_weight(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    state = _current(d, doc)
    if state is None or state.phase not in ACTIVE:
        return {**doc, "next": _elsewhere(state)}
    step = int(doc["step"])
    if state.step >= step:
        return {**doc, "next": WAIT}  # already applied (a retry)
    plan = state.plan
    weight = plan.weight(step)
    fence = _fence(d, doc["namespace"], doc["name"], doc["id"], ACTIVE)
    try:
        written = d.router.set_weight(doc["namespace"], state, weight, fence)
    except Fenced:
        return {**doc, "next": _elsewhere(d.store.get(doc["namespace"], doc["name"]))}

    def change(s: ReleaseState) -> ReleaseState | None:
        if s.id != doc["id"] or s.step >= step or s.phase not in ACTIVE:
            return None
        s.step, s.weight, s.since, s.inconclusive = step, weight, d.clock(), 0
        # Judged only once live (analyse waits on the nodes' acknowledgement of this generation).
        s.generation, s.live_since, s.publish_error = written.generation, None, written.publish_error
        s.waiting = f"weight {weight}% written at generation {written.generation}: waiting for the nodes"
        return s

    stored, changed = d.store.transition(doc["namespace"], doc["name"], change)
    if changed:
        publish(d, stored, "step", {"reason": f"step {step} of {plan.steps}: canary at {weight}%",
                                    "generation": written.generation})
        _note_publish(d, stored, written)
    # Look at the nodes after `poll` (not a whole interval): the interval starts once it is live.
    return {**doc, "next": AWAIT_LIVE, "poll": plan.poll_after(0)}


# -- gates: manual approval, pause -------------------------------------------------------------

def gate(event: dict, d: Deps | None = None) -> dict:
    """A `.waitForTaskToken` task: keeps the token in the release state for the API to answer;
    answers it at once when the awaited thing already happened."""
    d = d or deps_factory()
    doc, token, kind = event["doc"], event["token"], event["kind"]
    waiting_phase = Phase.AWAITING_APPROVAL if kind == "approval" else Phase.PAUSED

    def change(s: ReleaseState) -> ReleaseState | None:
        if s.id != doc["id"] or s.phase != waiting_phase or (kind == "approval" and s.approved):
            return None
        s.token, s.token_kind = token, kind
        return s

    stored, changed = d.store.transition(doc["namespace"], doc["name"], change)
    if not changed:
        if stored.id != doc["id"] or stored.phase in TERMINAL or stored.phase in FINISHING:
            d.machine.signal(token, {"next": _elsewhere(stored if stored.id == doc["id"] else None)})
        elif kind == "approval":
            d.machine.signal(token, {"next": "promote"})
        else:
            d.machine.signal(token, {"next": "resume"})
    return {"waiting": changed}


# -- promote and roll back (the state machine's, and the API's "promote now" and "abort") -------

def _advance(d: Deps, namespace: str, name: str, release_id: str, from_phases: Collection[Phase], phase: Phase,
             **fields: Any) -> tuple[ReleaseState, bool]:
    """Move this release (and only this one) from one of `from_phases` to `phase`, conditionally;
    (state now, whether this call moved it)."""
    def change(s: ReleaseState) -> ReleaseState | None:
        if s.id != release_id or s.phase not in from_phases:
            return None
        return s.model_copy(update={"phase": phase, **fields})

    return d.store.transition(namespace, name, change)


def finish_promote(d: Deps, namespace: str, name: str, release_id: str, reason: str) -> ReleaseState:
    state, changed = _advance(d, namespace, name, release_id, ACTIVE, Phase.PROMOTING, reason=reason, token=None,
                              waiting="promoting")
    if state.id != release_id or state.phase != Phase.PROMOTING:
        return state
    if changed:
        publish(d, state, Phase.PROMOTING, {"reason": reason})
    promoting = {Phase.PROMOTING}
    written = d.router.set_weight(namespace, state, 100, _fence(d, namespace, name, release_id, promoting), promote=True)
    state, waiting = _until_applied(d, namespace, name, release_id, Phase.PROMOTING, "promoting", written)
    if waiting:
        return state
    # Only now: HAProxy no longer routes to the stable version, so removing it drops no request.
    removed = retire_stable_service(d.router.store, namespace, state.stable)
    state, changed = _advance(d, namespace, name, release_id, promoting, Phase.PROMOTED, weight=100, finished=d.clock(),
                              waiting=None)
    if changed:
        publish(d, state, Phase.PROMOTED, {"reason": reason, "removed": removed, "generation": written.generation})
    return state


def _until_applied(d: Deps, namespace: str, name: str, release_id: str, phase: Phase, doing: str,
                   written: WeightChange) -> tuple[ReleaseState, bool]:
    """A promotion or rollback is done only once the nodes applied it: (state, still waiting),
    the state saying what it waits for ("rolling back (waiting for 1 node)")."""
    live = d.liveness(namespace, written.generation)
    waiting = None if live.live else f"{doing} ({live.waiting_for()}: {live.describe()})"

    def note(s: ReleaseState) -> ReleaseState | None:
        if s.id != release_id or s.phase != phase:
            return None
        update = {"generation": written.generation, "waiting": waiting,
                  "publish_error": written.publish_error if waiting else None}
        if all(getattr(s, k) == v for k, v in update.items()):
            return None
        return s.model_copy(update=update)

    state, changed = d.store.transition(namespace, name, note)
    if changed:
        _note_publish(d, state, written)
    return state, waiting is not None and state.id == release_id and state.phase == phase


def retire_stable_service(store, namespace: str, stable_route: str) -> str | None:
    """Promotion removes the old version: a stable route that is a deployment's service
    (`deployment/cluster/breed/port`) is sliced off its deployment, as Vamp's DELETE with a
    blueprint body does. Returns what was removed; None when the route is no deployment's
    service, or it is already gone (a retried task)."""
    parts = stable_route.split("/")
    if len(parts) != 4:
        return None
    deployment, cluster, breed, _ = parts

    stored = store.get(namespace, deployments.KIND, deployment)
    clusters = stored.document.get("clusters") or {} if stored else {}
    services = (clusters.get(cluster) or {}).get("services") or []
    if not any((s.get("breed") or {}).get("name") == breed for s in services):
        return None
    events = event_store().publish
    body = {"name": deployment, "clusters": {cluster: {"services": [{"breed": breed}]}}}
    deployments.change(store, namespace, deployment, body, "slice", events)
    try:
        sync_namespace(namespace, only=deployment, publish=events)
    except Exception:  # the slice is stored; the scheduled pass undeploys it if this one could not
        log.exception("synchronisation after retiring %s failed", stable_route)
    return f"{deployment}/{cluster}/{breed}"


def finish_rollback(d: Deps, namespace: str, name: str, release_id: str, reason: str) -> ReleaseState:
    state, changed = _advance(d, namespace, name, release_id, ACTIVE | {Phase.PROMOTING}, Phase.ROLLING_BACK,
                              reason=reason, token=None, waiting="rolling back")
    if state.id != release_id or state.phase != Phase.ROLLING_BACK:
        return state
    if changed:
        publish(d, state, Phase.ROLLING_BACK, {"reason": reason})
    rolling_back = {Phase.ROLLING_BACK}
    written = d.router.set_weight(namespace, state, 0, _fence(d, namespace, name, release_id, rolling_back),
                                  rollback=True)
    state, waiting = _until_applied(d, namespace, name, release_id, Phase.ROLLING_BACK, "rolling back", written)
    if waiting:
        return state
    hooks = [r.as_dict() for r in webhooks.run(state.plan.hooks("on_rollback"), state, d.call_hook)]
    state, changed = _advance(d, namespace, name, release_id, rolling_back, Phase.ROLLED_BACK, weight=0,
                              finished=d.clock(), waiting=None)
    if changed:
        publish(d, state, Phase.ROLLED_BACK, {"reason": state.reason, "webhooks": hooks,
                                               "generation": written.generation})
    return state


def promote(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    state = finish_promote(d, doc["namespace"], doc["name"], doc["id"], "every step passed")
    if state.id == doc["id"] and state.phase == Phase.PROMOTING:  # not applied on the nodes yet
        return {**doc, "next": AWAIT, **_backoff(state.plan, doc)}
    return {**doc, "next": DONE if state.phase == Phase.PROMOTED and state.id == doc["id"] else STOP}


def rollback(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    error = doc.get("error") or {}
    if error:
        reason = f"task failed: {error.get('Error', 'error')}: {str(error.get('Cause', ''))[:300]}"
    else:
        reason = "failed checks reached the policy's limit"
    state = d.store.get(doc["namespace"], doc["name"])
    if state is not None and state.id == doc["id"] and state.phase in ACTIVE and not error:
        reason = state.reason or reason
    state = finish_rollback(d, doc["namespace"], doc["name"], doc["id"], reason)
    out = {k: v for k, v in doc.items() if k != "error"}
    if state.id == doc["id"] and state.phase == Phase.ROLLING_BACK:  # not applied: retried until it is
        return out | {"next": AWAIT, **_backoff(state.plan, doc)}
    return out | {"next": DONE if state.phase == Phase.ROLLED_BACK else STOP}


def _backoff(plan, doc: dict) -> dict:
    """The next wait of a promotion or rollback not applied yet, and the total waited so far
    (carried in the execution's document: the release state has no clock for these phases)."""
    waited = float(doc.get("waited") or 0)
    poll = plan.poll_after(waited)
    return {"poll": poll, "waited": waited + poll}


TASKS = {"analyse": analyse, "set_weight": set_weight, "gate": gate, "promote": promote, "rollback": rollback}
