"""Release use cases behind the API: start, status, list, pause, resume, approve, promote now,
abort. Nothing here knows about HTTP."""
from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from chalicelib import dsl
from chalicelib.artifacts import webhook_egress_errors
from chalicelib.dsl.document import field_errors
from chalicelib.dsl.release import Release, ReleasePolicyRef
from chalicelib.dsl.secrets import redact
from chalicelib.errors import Conflict, FieldError, NotFound, ValidationFailed
from chalicelib.releases import tasks
from chalicelib.releases.machine import execution_name
from chalicelib.releases.model import ACTIVE, FINISHING, TERMINAL, Phase, ReleaseState, Snapshot, now
from chalicelib.releases.plan import plan_of
from chalicelib.releases.tasks import Deps, finish_promote, finish_rollback, publish
from chalicelib.store.event_store import new_id
from chalicelib.store.release_store import GatewayHeld

ACTIONS = ("pause", "resume", "approve", "promote", "abort")
HAND_OVER_AFTER = 3.0  # seconds "promote now" and "abort" wait for the nodes themselves


def _policy(resolve, policy) -> Any:
    """The release's policy model: inline, or the stored `release-policies` artifact it names."""
    if not isinstance(policy, ReleasePolicyRef):
        return policy
    stored = resolve("release-policies", policy.reference)
    if stored is None:
        raise ValidationFailed.at("policy", f"unknown release policy {policy.reference!r}")
    return dsl.parse("release-policies", stored)


def parse(data: Any, resolve) -> tuple[dict, Any]:
    """Validate a release body: (its canonical form, the policy model)."""
    if not isinstance(data, dict):
        raise ValidationFailed.at("", "a release is a map")
    data = dict(data)
    if "kind" in data:
        if str(data.pop("kind")).strip().lower() not in ("release", "releases"):
            raise ValidationFailed.at("kind", "must be releases")
    if not data.get("name"):
        raise ValidationFailed.at("name", "required")
    try:
        model = Release.model_validate(data)
    except ValidationError as e:
        raise ValidationFailed("Invalid release", field_errors(e)) from None
    spec = {"name": model.name, "kind": "releases", **model.model_dump(mode="json", exclude_none=True, exclude={"name"})}
    return spec, _policy(resolve, model.policy)


def _check_webhooks(spec: dict, policy) -> None:
    """The policy's webhooks against the egress policy, as it is now (docs/decisions/0025): a
    stored policy was checked when stored, but the operator's allowlist may have narrowed."""
    named = spec["policy"].get("reference") if isinstance(spec.get("policy"), dict) else None
    errors = webhook_egress_errors(policy.webhooks, "webhooks" if named else "policy.webhooks")
    if named:
        errors = [FieldError("policy", f"release policy {named!r}: {e.path}: {e.reason}") for e in errors]
    if errors:
        raise ValidationFailed("Invalid release", errors)


def start(d: Deps, namespace: str, data: Any, resolve, *, validate_only: bool = False) -> dict:
    spec, policy = parse(data, resolve)
    _check_webhooks(spec, policy)
    plan = plan_of(policy)
    name = spec["name"]
    snapshot = d.router.snapshot(namespace, spec["gateway"], spec["stable"], spec["canary"])
    existing = d.store.get(namespace, name)
    if existing is not None and existing.phase not in TERMINAL:
        raise Conflict(f"release {name} is {existing.phase}", [FieldError("name", "a release of this name is running")])
    # Answered early (and for validate_only); the store's put enforces it, with the gateway's lock.
    holder = d.store.holder(namespace, spec["gateway"])
    if holder is not None and holder != name:
        raise GatewayHeld(spec["gateway"], holder)
    release_id = new_id()
    state = ReleaseState(
        id=release_id, name=name, namespace=namespace, spec=spec, plan=plan,
        gateway=spec["gateway"], stable=spec["stable"], canary=spec["canary"],
        snapshot=Snapshot(stable=snapshot["stable"], canary=snapshot["canary"], pool=snapshot["pool"]),
        phase=Phase.PROGRESSING, step=0, weight=0, checks=0, failures=0, inconclusive=0,
        approved=False, token=None, since=now(), started=now(), history=[], reason="started",
    )
    if validate_only:
        return view(state)
    state = d.store.put(namespace, state, existing.version if existing else None)
    payload = {"namespace": namespace, "name": name, "id": release_id, "interval": plan.interval,
               "step": 0, "check": 1, "next": "analyse"}
    try:
        arn = d.machine.start(execution_name(namespace, name, release_id), payload)
    except Exception as e:
        failed = {"phase": Phase.FAILED, "reason": f"not started: {e}"}
        d.store.transition(namespace, name, lambda s: s.model_copy(update=failed) if s.id == release_id else None)
        raise
    state, _ = d.store.transition(namespace, name,
                                  lambda s: s.model_copy(update={"execution": arn}) if s.id == release_id else None)
    # The release's history keeps the policy without its webhooks' credentials (dsl/secrets.py).
    publish(d, state, Phase.PROGRESSING, {"reason": "started", "policy": redact({"policy": spec["policy"]})["policy"]})
    return view(state)


def view(state: ReleaseState) -> dict:
    """The release as the API shows it (plain JSON values: the API also answers in YAML)."""
    plan = state.plan
    return {
        "name": state.name, "kind": "releases", "id": state.id, "spec": state.spec,
        "phase": state.phase.value, "step": state.step, "steps": plan.steps, "weight": state.weight,
        "weights": plan.weights, "interval": f"{plan.interval}s",
        "failures": state.failures, "failure_threshold": plan.failures,
        "inconclusive": state.inconclusive, "approved": state.approved,
        "awaiting": state.token_kind if state.token else None,
        "reason": state.reason, "started": state.started, "updated": state.updated,
        # What is live (docs/decisions/0018): the generation the weight was written at, since
        # when every node runs it, what the phase waits for, why etcd did not get it.
        "phase_detail": state.waiting if state.waiting else state.phase.value.replace("_", " "),
        "generation": state.generation, "live_since": state.live_since, "waiting": state.waiting,
        "publish_error": state.publish_error,
        "finished": state.finished, "execution": state.execution,
        "checks": [c.model_dump(mode="json") for c in state.history],
    }


def status(d: Deps, namespace: str, name: str) -> dict:
    return view(d.store.require(namespace, name))


def listing(d: Deps, namespace: str) -> list[dict]:
    return [view(s) for s in sorted(d.store.list(namespace), key=lambda s: s.name)]


def _not_in(state: ReleaseState, action: str) -> Conflict:
    return Conflict(f"release {state.name} is {state.phase}: cannot {action}", [FieldError("phase", state.phase.value)])


def act(d: Deps, namespace: str, name: str, action: str) -> dict:
    if action not in ACTIONS:
        raise NotFound(f"unknown release action {action}", [FieldError("action", f"one of {', '.join(ACTIONS)}")])
    state = d.store.require(namespace, name)
    rid = state.id
    pausable = {Phase.PROGRESSING, Phase.PAUSED}
    if action == "pause":
        def change(s: ReleaseState) -> ReleaseState | None:
            if s.id != rid or s.phase not in pausable:
                raise _not_in(s, action)
            if s.phase == Phase.PAUSED:
                return None
            return s.model_copy(update={"phase": Phase.PAUSED, "reason": "paused through the API"})
        state, changed = d.store.transition(namespace, name, change)
        if changed:
            publish(d, state, Phase.PAUSED, {"reason": state.reason})
    elif action == "resume":
        held = {}

        def change(s: ReleaseState) -> ReleaseState | None:
            if s.id != rid or s.phase not in pausable:
                raise _not_in(s, action)
            if s.phase == Phase.PROGRESSING:
                return None
            held["token"] = s.token if s.token_kind == "pause" else None
            return s.model_copy(update={"phase": Phase.PROGRESSING, "token": None, "reason": "resumed through the API"})
        state, changed = d.store.transition(namespace, name, change)
        if changed:
            d.machine.signal(held.get("token"), {"next": "resume"})
            publish(d, state, Phase.PROGRESSING, {"reason": state.reason})
    elif action == "approve":
        held = {}

        def change(s: ReleaseState) -> ReleaseState | None:
            if s.id != rid or s.phase not in ACTIVE:
                raise _not_in(s, action)
            held["token"] = s.token if s.token_kind == "approval" else None
            if s.approved:
                return None
            return s.model_copy(update={"approved": True, "token": None, "reason": "approved through the API"})
        state, changed = d.store.transition(namespace, name, change)
        if changed:
            d.machine.signal(held.get("token"), {"next": "promote"})
            publish(d, state, "approved", {"reason": state.reason})
    elif action == "promote":
        if state.phase not in ACTIVE:
            raise _not_in(state, action)
        token = state.token
        state = _applied_soon(lambda: finish_promote(d, namespace, name, rid, "promoted through the API"),
                              Phase.PROMOTING)
        _finish_or_hand_over(d, state, token, Phase.PROMOTED, "promote", "promoted through the API")
    elif action == "abort":
        if state.phase not in ACTIVE | FINISHING:
            raise _not_in(state, action)
        token = state.token
        state = _applied_soon(lambda: finish_rollback(d, namespace, name, rid, "aborted through the API"),
                              Phase.ROLLING_BACK)
        _finish_or_hand_over(d, state, token, Phase.ROLLED_BACK, "rollback", "aborted through the API")
    return view(state)


def _applied_soon(finish, waiting: Phase) -> ReleaseState:
    """Agents acknowledge within a fraction of a second: the API gives them a little while before
    handing the wait over to the execution (whose next look may be an interval away)."""
    deadline = time.monotonic() + HAND_OVER_AFTER
    state = finish()
    while state.phase == waiting and time.monotonic() < deadline:
        time.sleep(0.2)
        state = finish()
    return state


def _finish_or_hand_over(d: Deps, state: ReleaseState, token: str | None, done: Phase, task: str, why: str) -> None:
    """Applied on the nodes: the execution is stopped. Not yet: the execution finishes it (its
    next task sees the phase and goes to `task`, which waits until the nodes applied it); one
    waiting at a gate is told to go there."""
    if state.phase == done:
        d.machine.stop(state.execution, why)
    elif token:
        d.machine.signal(token, {"next": task})


def delete(d: Deps, namespace: str, name: str) -> None:
    state = d.store.require(namespace, name)
    if state.phase not in TERMINAL:
        raise _not_in(state, "delete (abort it first)")
    d.store.delete(namespace, name, state.version)


def deps() -> Deps:
    return tasks.deps_factory()
