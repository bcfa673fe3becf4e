"""A release's plan: the policy reduced to plain numbers, kept in the release state so the
tasks never parse the DSL."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Webhook:
    name: str
    type: str  # before_rollout | before_increase | before_promotion | on_rollback
    url: str
    timeout: int
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    weights: list[int]  # canary weight of step 1..n (percent of the stable+canary pool)
    interval: int  # seconds between checks
    failures: int  # failed checks before rollback
    minimum_requests: int
    inconclusive_limit: int
    success_minimum: float | None = None  # percent
    success_versus_stable: float | None = None  # percentage points below stable
    latency_percentile: int = 99
    latency_maximum: float | None = None  # ms
    latency_versus_stable: float | None = None  # percent above stable
    judge_confidence: float | None = None  # percent; None: no statistical judge
    manual_approval: bool = False
    webhooks: list[Webhook] = field(default_factory=list)
    apply_timeout: int = 30  # seconds for a weight to be live on the nodes
    share_tolerance: float = 10.0  # points the observed canary share may be off the weight

    def poll_after(self, waited: float) -> int:
        """Seconds until the next look at the nodes while a weight is not applied yet (Wait
        states): about as long as already waited (1, 1, 2, 4, ...), at most min(interval, 5).
        Agents acknowledge within ~100 ms of the etcd put, so the first look after 1 s usually
        finds the weight live; the backoff keeps a long etcd outage at one look per 5 s."""
        return int(max(1, min(waited, self.interval, 5)))

    @property
    def steps(self) -> int:
        return len(self.weights)

    def weight(self, step: int) -> int:
        """Canary weight at a step; step 0 is before the rollout (0%)."""
        return 0 if step <= 0 else self.weights[min(step, self.steps) - 1]

    def hooks(self, kind: str) -> list[Webhook]:
        return [w for w in self.webhooks if w.type == kind]


def plan_of(policy) -> Plan:
    """From a validated `chalicelib.dsl.ReleasePolicy`."""
    m = policy.metrics
    return Plan(
        weights=policy.weights(),
        interval=policy.interval,
        failures=policy.failures,
        minimum_requests=policy.minimum_requests,
        inconclusive_limit=policy.inconclusive_limit,
        success_minimum=m.success_rate.minimum if m.success_rate else None,
        success_versus_stable=m.success_rate.versus_stable if m.success_rate else None,
        latency_percentile=m.latency.percentile if m.latency else 99,
        latency_maximum=m.latency.maximum if m.latency else None,
        latency_versus_stable=m.latency.versus_stable if m.latency else None,
        judge_confidence=policy.judge.confidence if policy.judge else None,
        manual_approval=policy.manual_approval,
        webhooks=[Webhook(w.name, w.type, w.url, w.timeout, dict(w.metadata)) for w in policy.webhooks],
        apply_timeout=policy.apply_timeout,
        share_tolerance=policy.share_tolerance,
    )
