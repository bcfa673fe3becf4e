"""What follows a check: advance, hold, wait for approval, promote or roll back. Pure.

- pass: the streak of inconclusive checks ends; the next step's weight is set, or after the last
  step the canary is promoted (after manual approval when the policy asks for it);
- fail: one more failed check; at the policy's `failures` the release rolls back, else it holds
  the weight and checks again after the interval;
- inconclusive: never a pass. The weight holds; `inconclusive_limit` inconclusive checks in a row
  count as one failed check (a canary that gets no traffic cannot hold a release forever).
Failed checks add up over the whole release (as Flagger's do); they are not reset by a pass.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.releases.analysis import FAIL, INCONCLUSIVE, PASS
from chalicelib.releases.plan import Plan

SET_WEIGHT, WAIT, APPROVAL, PROMOTE, ROLLBACK = "set_weight", "wait", "approval", "promote", "rollback"


@dataclass(frozen=True)
class Decision:
    next: str
    step: int  # the step the release is at after the decision (set_weight: the one to apply)
    failures: int
    inconclusive: int
    reason: str


def decide(plan: Plan, step: int, failures: int, inconclusive: int, verdict: str, *, approved: bool = False) -> Decision:
    if verdict == PASS:
        if step < plan.steps:
            return Decision(SET_WEIGHT, step + 1, failures, 0, f"check passed: {plan.weight(step + 1)}% next")
        if plan.manual_approval and not approved:
            return Decision(APPROVAL, step, failures, 0, "last step passed: waiting for approval")
        return Decision(PROMOTE, step, failures, 0, "last step passed: promoting")
    if verdict == INCONCLUSIVE:
        inconclusive += 1
        if inconclusive < plan.inconclusive_limit:
            return Decision(WAIT, step, failures, inconclusive,
                            f"inconclusive ({inconclusive} of {plan.inconclusive_limit} in a row): holding {plan.weight(step)}%")
        inconclusive, why = 0, f"{plan.inconclusive_limit} inconclusive checks in a row count as a failure"
    elif verdict == FAIL:
        why = "check failed"
    else:
        raise ValueError(f"unknown verdict {verdict!r}")
    failures += 1
    if failures >= plan.failures:
        return Decision(ROLLBACK, step, failures, inconclusive, f"{why}: {failures} of {plan.failures} failed checks, rolling back")
    return Decision(WAIT, step, failures, inconclusive, f"{why}: {failures} of {plan.failures} failed checks, holding {plan.weight(step)}%")


def split(pool: int, canary_percent: int) -> tuple[int, int]:
    """(stable, canary) weights of the gateway when the canary has `canary_percent` of the pool
    (the share stable and canary held together when the release started)."""
    canary = round(pool * canary_percent / 100)
    return pool - canary, canary
