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
from dataclasses import dataclass, field
from typing import Any, Callable

from chalicelib.releases import webhooks
from chalicelib.releases.analysis import FAIL, PASS, analyse as judge
from chalicelib.releases.decisions import ROLLBACK, decide
from chalicelib.releases.plan import Plan
from chalicelib.releases.router import Fenced
from chalicelib.releases.state import ACTIVE, TERMINAL, now, record_check

log = logging.getLogger(__name__)
STOP, WAIT, DONE, PAUSE = "stop", "wait", "done", "pause"


@dataclass
class Deps:
    """The outside world of a release, each behind a small interface (tests swap them)."""

    store: Any = None  # ReleaseStore
    router: Any = None  # GatewayRouter
    metrics: Any = None  # MetricSource
    events: Any = None  # EventStore
    machine: Any = None  # StepFunctionsMachine
    call_hook: Callable = field(default=webhooks.call)
    clock: Callable[[], str] = field(default=now)


def default_deps() -> Deps:
    from chalicelib.releases.machine import StepFunctionsMachine
    from chalicelib.releases.metrics import EventMetricSource
    from chalicelib.releases.router import GatewayRouter
    from chalicelib.releases.state import ReleaseStore
    from chalicelib.store.events import event_store

    events = event_store()
    return Deps(ReleaseStore(), GatewayRouter(events=events), EventMetricSource(events), events, StepFunctionsMachine())


# Tests and the bench replace this to observe or break the outside world.
deps_factory: Callable[[], Deps] = default_deps


def publish(d: Deps, state: dict, tag: str, value: dict) -> None:
    from chalicelib.store.event_store import new_event

    try:
        d.events.publish(state["namespace"], [new_event(
            tags=[f"releases:{state['name']}", f"gateways:{state['gateway']}", f"release:{tag}"],
            value={"id": state["id"], "phase": state["phase"], "step": state.get("step", 0),
                   "weight": state.get("weight", 0), **value},
            type="release")])
    except Exception:  # the history is best effort; the state is the truth
        log.exception("release event %s not published for %s", tag, state["name"])


def _current(d: Deps, doc: dict) -> dict | None:
    state = d.store.get(doc["namespace"], doc["name"])
    return state if state is not None and state["id"] == doc["id"] else None


def _fence(d: Deps, namespace: str, name: str, release_id: str, phases: tuple) -> Callable[[], None]:
    def check() -> None:
        state = d.store.get(namespace, name)
        if state is None or state["id"] != release_id or state["phase"] not in phases:
            raise Fenced(f"release {name} is {state['phase'] if state else 'gone'}")
    return check


# -- analyse: one check, and the decision that follows -----------------------------------------

def analyse(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    state = _current(d, doc)
    if state is None or state["phase"] not in ACTIVE:
        return {**doc, "next": STOP}
    number = int(doc["check"])
    last = state.get("last") or {}
    if state["checks"] >= number and last.get("check") == number:
        return {**doc, **last["out"]}  # a retry: what the first invocation decided
    if state["phase"] == "paused":
        return {**doc, "next": PAUSE}
    plan = Plan.from_dict(state["plan"])
    step, until = state["step"], d.clock()
    if step == 0:
        check = {"verdict": PASS, "reason": "before rollout", "results": []}
        gate = plan.hooks("before_rollout")
    else:
        canary = d.metrics.route(doc["namespace"], state["gateway"], state["canary"], state["since"], until, plan.latency_percentile)
        stable = d.metrics.route(doc["namespace"], state["gateway"], state["stable"], state["since"], until, plan.latency_percentile)
        check = judge(plan, canary, stable)
        gate = plan.hooks("before_promotion" if step >= plan.steps else "before_increase")
    if check["verdict"] == PASS and gate:
        results = webhooks.run(gate, state, d.call_hook)
        check["webhooks"] = [r.as_dict() for r in results]
        failed = [r for r in results if not r.ok]
        if failed:
            check["verdict"] = FAIL
            check["reason"] = "; ".join(f"webhook {r.name}: {r.reason}" for r in failed)
    decision = decide(plan, step, state["failures"], state["inconclusive"], check["verdict"], approved=state.get("approved", False))
    record = {"number": number, "step": step, "weight": state.get("weight", 0), "since": state["since"], "until": until,
              **check, "failures": decision.failures, "decision": decision.next, "decision_reason": decision.reason}
    out = {"step": decision.step, "check": number + 1, "next": decision.next}

    def change(s: dict) -> dict | None:
        if s["id"] != doc["id"] or s["checks"] >= number or s["phase"] not in ACTIVE:
            return None
        s.update(checks=number, failures=decision.failures, inconclusive=decision.inconclusive, since=until,
                 last={"check": number, "out": out}, reason=decision.reason)
        record_check(s, record)
        if decision.next == "approval":
            s["phase"] = "awaiting_approval"
        return s

    stored, changed = d.store.transition(doc["namespace"], doc["name"], change)
    if not changed:  # someone else moved the release on meanwhile: follow what is stored
        if stored["id"] != doc["id"] or stored["phase"] not in ACTIVE:
            return {**doc, "next": STOP}
        if (stored.get("last") or {}).get("check") == number:
            return {**doc, **stored["last"]["out"]}
        return {**doc, "next": WAIT}
    publish(d, stored, "check", {"check": record})
    if decision.next == "approval":
        publish(d, stored, "awaiting_approval", {"reason": decision.reason})
    return {**doc, **out}


# -- set weight: the step the analysis chose ---------------------------------------------------

def set_weight(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    state = _current(d, doc)
    if state is None or state["phase"] not in ACTIVE:
        return {**doc, "next": STOP}
    step = int(doc["step"])
    if state["step"] >= step:
        return {**doc, "next": WAIT}  # already applied (a retry)
    plan = Plan.from_dict(state["plan"])
    weight = plan.weight(step)
    fence = _fence(d, doc["namespace"], doc["name"], doc["id"], ACTIVE)
    try:
        d.router.set_weight(doc["namespace"], state, weight, fence)
    except Fenced:
        return {**doc, "next": STOP}

    def change(s: dict) -> dict | None:
        if s["id"] != doc["id"] or s["step"] >= step or s["phase"] not in ACTIVE:
            return None
        s.update(step=step, weight=weight, since=d.clock(), inconclusive=0)
        return s

    stored, changed = d.store.transition(doc["namespace"], doc["name"], change)
    if changed:
        publish(d, stored, "step", {"reason": f"step {step} of {plan.steps}: canary at {weight}%"})
    return {**doc, "next": WAIT}


# -- gates: manual approval, pause -------------------------------------------------------------

def gate(event: dict, d: Deps | None = None) -> dict:
    """A `.waitForTaskToken` task: keeps the token in the release state for the API to answer;
    answers it at once when the awaited thing already happened."""
    d = d or deps_factory()
    doc, token, kind = event["doc"], event["token"], event["kind"]
    waiting_phase = "awaiting_approval" if kind == "approval" else "paused"

    def change(s: dict) -> dict | None:
        if s["id"] != doc["id"] or s["phase"] != waiting_phase or (kind == "approval" and s.get("approved")):
            return None
        s.update(token=token, token_kind=kind)
        return s

    stored, changed = d.store.transition(doc["namespace"], doc["name"], change)
    if not changed:
        if stored["id"] != doc["id"] or stored["phase"] in TERMINAL or stored["phase"] in ("promoting", "rolling_back"):
            d.machine.signal(token, {"next": STOP})
        elif kind == "approval":
            d.machine.signal(token, {"next": "promote"})
        else:
            d.machine.signal(token, {"next": "resume"})
    return {"waiting": changed}


# -- promote and roll back (the state machine's, and the API's "promote now" and "abort") -------

def _advance(d: Deps, namespace: str, name: str, release_id: str, from_phases: tuple, phase: str,
             **fields: Any) -> tuple[dict, bool]:
    """Move this release (and only this one) from one of `from_phases` to `phase`, conditionally;
    (state now, whether this call moved it)."""
    def change(s: dict) -> dict | None:
        if s["id"] != release_id or s["phase"] not in from_phases:
            return None
        s.update(phase=phase, **fields)
        return s

    return d.store.transition(namespace, name, change)


def finish_promote(d: Deps, namespace: str, name: str, release_id: str, reason: str) -> dict:
    state, changed = _advance(d, namespace, name, release_id, ACTIVE, "promoting", reason=reason, token=None)
    if state["id"] != release_id or state["phase"] not in ("promoting",):
        return state
    if changed:
        publish(d, state, "promoting", {"reason": reason})
    d.router.set_weight(namespace, state, 100, _fence(d, namespace, name, release_id, ("promoting",)), promote=True)
    removed = retire_stable_service(d.router.store, namespace, state["stable"])
    state, changed = _advance(d, namespace, name, release_id, ("promoting",), "promoted", weight=100, finished=d.clock())
    if changed:
        publish(d, state, "promoted", {"reason": reason, "removed": removed})
    return state


def retire_stable_service(store, namespace: str, stable_route: str) -> str | None:
    """Promotion removes the old version: a stable route that is a deployment's service
    (`deployment/cluster/breed/port`) is sliced off its deployment, as Vamp's DELETE with a
    blueprint body does. Returns what was removed; None when the route is no deployment's
    service, or it is already gone (a retried task)."""
    parts = stable_route.split("/")
    if len(parts) != 4:
        return None
    deployment, cluster, breed, _ = parts
    from chalicelib.deployments import service as deployments
    from chalicelib.deployments.sync import sync_namespace
    from chalicelib.store.events import event_store

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


def finish_rollback(d: Deps, namespace: str, name: str, release_id: str, reason: str) -> dict:
    state, changed = _advance(d, namespace, name, release_id, ACTIVE + ("promoting",), "rolling_back",
                              reason=reason, token=None)
    if state["id"] != release_id or state["phase"] != "rolling_back":
        return state
    if changed:
        publish(d, state, "rolling_back", {"reason": reason})
    d.router.set_weight(namespace, state, 0, _fence(d, namespace, name, release_id, ("rolling_back",)), rollback=True)
    plan = Plan.from_dict(state["plan"])
    hooks = [r.as_dict() for r in webhooks.run(plan.hooks("on_rollback"), state, d.call_hook)]
    state, changed = _advance(d, namespace, name, release_id, ("rolling_back",), "rolled_back", weight=0,
                              finished=d.clock())
    if changed:
        publish(d, state, "rolled_back", {"reason": reason, "webhooks": hooks})
    return state


def promote(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    state = finish_promote(d, doc["namespace"], doc["name"], doc["id"], "every step passed")
    return {**doc, "next": DONE if state["phase"] == "promoted" and state["id"] == doc["id"] else STOP}


def rollback(doc: dict, d: Deps | None = None) -> dict:
    d = d or deps_factory()
    error = doc.get("error") or {}
    if error:
        reason = f"task failed: {error.get('Error', 'error')}: {str(error.get('Cause', ''))[:300]}"
    else:
        reason = "failed checks reached the policy's limit"
    state = d.store.get(doc["namespace"], doc["name"])
    if state is not None and state["id"] == doc["id"] and state["phase"] in ACTIVE and not error:
        reason = state.get("reason") or reason
    state = finish_rollback(d, doc["namespace"], doc["name"], doc["id"], reason)
    return {k: v for k, v in doc.items() if k != "error"} | {"next": DONE if state["phase"] == "rolled_back" else STOP}


TASKS = {"analyse": analyse, "set_weight": set_weight, "gate": gate, "promote": promote, "rollback": rollback}
_ = ROLLBACK
