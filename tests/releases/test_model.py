"""The release state model reads and writes the JSON releases were stored as."""
from __future__ import annotations

import json

from chalicelib.releases.model import ACTIVE, TERMINAL, Check, Phase, ReleaseState
from chalicelib.releases.plan import Plan, Webhook

# A release's `doc` as stored before the model existed: waiting for approval after two checks.
STORED = {
    "id": "0190c1", "name": "r1", "namespace": "default",
    "spec": {"name": "r1", "kind": "releases", "gateway": "shop", "stable": "shop/v1/web", "canary": "shop/v2/web",
             "policy": {"steps": ["50%"], "manual_approval": True}},
    "plan": {"weights": [50], "interval": 1, "failures": 2, "minimum_requests": 10, "inconclusive_limit": 3,
             "success_minimum": 99.0, "success_versus_stable": None, "latency_percentile": 99, "latency_maximum": 100.0,
             "latency_versus_stable": None, "judge_confidence": None, "manual_approval": True,
             "webhooks": [{"name": "ship", "type": "before_promotion", "url": "http://127.0.0.1:9/ok", "timeout": 5,
                           "metadata": {"team": "shop", "tier": 1}}],
             "apply_timeout": 30, "share_tolerance": 10.0},  # plans carry these since docs/decisions/0018
    "gateway": "shop", "stable": "shop/v1/web", "canary": "shop/v2/web",
    "snapshot": {"stable": {"weight": "100%"}, "canary": {"weight": "0%", "condition_strength": "0%"}, "pool": 100},
    "phase": "awaiting_approval", "step": 1, "weight": 50, "checks": 2, "failures": 0, "inconclusive": 0,
    "approved": False, "token": "AAAA-token", "since": "2026-12-01T10:00:02.000Z", "started": "2026-12-01T10:00:00.000Z",
    "history": [
        {"number": 1, "step": 0, "weight": 0, "since": "2026-12-01T10:00:00.000Z", "until": "2026-12-01T10:00:01.000Z",
         "verdict": "pass", "reason": "before rollout", "results": [], "failures": 0, "decision": "set_weight",
         "decision_reason": "check passed: 50% next"},
        {"number": 2, "step": 1, "weight": 50, "since": "2026-12-01T10:00:01.000Z", "until": "2026-12-01T10:00:02.000Z",
         "verdict": "pass", "reason": "every metric within its threshold",
         "canary": {"requests": 50, "errors": 0, "success_rate": 100.0, "latency": 23.0, "samples": 50},
         "stable": {"requests": 0, "errors": 0, "success_rate": None, "latency": None, "samples": 0},
         "results": [{"metric": "success_rate", "verdict": "pass", "value": 100.0, "threshold": 99.0, "reason": "100.00% >= 99%"},
                     {"metric": "p99_versus_stable", "verdict": "inconclusive", "value": 23.0, "threshold": None,
                      "reason": "no stable baseline"}],
         "webhooks": [{"name": "ship", "ok": True, "status": 200, "reason": "HTTP 200"}],
         "failures": 0, "decision": "approval", "decision_reason": "last step passed: waiting for approval"},
    ],
    "reason": "last step passed: waiting for approval", "updated": "2026-12-01T10:00:02.100Z",
    "execution": "arn:aws:states:us-east-1:123456789012:execution:vamp-release:default-r1-0190c1",
    "last": {"check": 2, "out": {"step": 1, "check": 3, "next": "approval"}}, "token_kind": "approval",
}


def test_a_stored_state_loads_typed_and_dumps_as_it_was_stored():
    state = ReleaseState.model_validate({**STORED, "version": 7})
    assert state.phase is Phase.AWAITING_APPROVAL and state.phase in ACTIVE and state.version == 7
    assert state.plan.weights == [50] and state.plan.hooks("before_promotion")[0].metadata == {"team": "shop", "tier": 1}
    assert state.history[0].canary is None and state.history[1].canary.requests == 50
    assert state.last.out.next == "approval"
    dumped = state.model_dump(mode="json")
    assert dumped == STORED  # the version is the item's, not the document's
    assert json.dumps(dumped) == json.dumps(STORED)  # key order too


def test_keys_a_release_gains_on_its_way_stay_out_until_set():
    fresh = {k: v for k, v in STORED.items() if k not in ("updated", "execution", "last", "token_kind")}
    state = ReleaseState.model_validate({**fresh, "history": []})
    assert state.model_dump(mode="json") == {**fresh, "history": []}
    state.phase, state.finished = Phase.PROMOTED, "2026-12-01T10:00:09.000Z"
    dumped = state.model_dump(mode="json")
    assert dumped["phase"] == "promoted" and type(dumped["phase"]) is str and dumped["finished"]
    assert state.phase in TERMINAL and f"{state.phase}" == "promoted"


def test_a_plan_stored_before_liveness_gets_its_defaults():
    older = {k: v for k, v in STORED["plan"].items() if k not in ("apply_timeout", "share_tolerance")}
    state = ReleaseState.model_validate({**STORED, "plan": older})
    assert state.plan.apply_timeout == 30 and state.plan.share_tolerance == 10.0


def test_keys_this_code_does_not_know_survive():
    state = ReleaseState.model_validate({**STORED, "newer": {"x": 1}})
    state.record(Check.model_validate(STORED["history"][0]))
    assert state.model_dump(mode="json")["newer"] == {"x": 1}


def test_history_keeps_the_last_fifty_checks():
    state = ReleaseState.model_validate(STORED)
    for n in range(3, 60):
        state.record(Check.model_validate({**STORED["history"][0], "number": n}))
    assert len(state.history) == 50 and state.history[-1].number == 59


def test_the_plan_round_trips():
    plan = Plan(weights=[10, 50], interval=1, failures=2, minimum_requests=10, inconclusive_limit=2,
                success_minimum=99.0, webhooks=[Webhook("w", "on_rollback", "http://x", 5, {"a": "b"})])
    state = ReleaseState.model_validate({**STORED, "plan": plan})
    assert ReleaseState.model_validate(state.model_dump(mode="json")).plan == plan
