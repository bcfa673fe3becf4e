"""Release policy and release: automated canary releases in Vamp's style.

A `release-policies` artifact is reusable; a release names a gateway, its stable and canary
routes, and a policy (a reference or inline):

```yaml
name: safe
kind: release-policies
steps: [5%, 20%, 50%]          # or {step: 10%, maximum: 50%}
interval: 1m
failures: 3                    # failed checks before rollback
minimum_requests: 100          # fewer canary requests in a check: inconclusive (never a pass)
inconclusive_limit: 3          # that many inconclusive checks in a row count as one failure
apply_timeout: 30s             # a step's weight must be live on the gateway nodes within this
share_tolerance: 10%           # a check seeing the canary's share of requests further off the weight: inconclusive
metrics:
  success_rate: { minimum: 99%, versus_stable: 1% }   # absolute, and relative to the stable route
  latency: { percentile: 99, maximum: 500ms, versus_stable: 20% }
judge: { type: mann-whitney, confidence: 95% }       # optional statistical judge of latency
manual_approval: true          # promotion waits for POST .../approve
webhooks:
  - { name: load, type: before_rollout, url: "http://tester/ready", timeout: 5s }
---
name: sava-1.1
gateway: sava/9050
stable: sava/sava/sava:1.0.0/webport
canary: sava/sava/sava:1.1.0/webport
policy: safe
```
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from .base import Artifact, ListOf, MapOf, Model, Name, Problems, Ref, SafeText, Scalar, ref_or
from .gateway import check_route_key
from .names import check_gateway_name
from .secrets import redact_url
from .units import Duration, Percent, parse_percent

MAX_STEPS = 100
MIN_INTERVAL = 1  # seconds; Flagger's floor is 10 s, local tests use 1 s
MAX_INTERVAL = 86_400
MAX_WEBHOOK_TIMEOUT = 30
MAX_APPLY_TIMEOUT = 3600
MAX_WEBHOOKS = 16  # each is called at every step it applies to
_LATENCY_RE = re.compile(r"^(\d+(?:\.\d+)?) *(ms|s)?$")  # on the value without its outer spaces (linear)
_URL_RE = re.compile(r"^https?://[^\s/?#]+(?:[/?#][^\s]*)?$", re.IGNORECASE)


def _latency(value: Any) -> float:
    """Milliseconds: 500, "500ms", "0.5s"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and (m := _LATENCY_RE.fullmatch(value.strip(" "))):
        number = float(m.group(1)) * (1000 if m.group(2) == "s" else 1)
    else:
        raise ValueError(f"invalid latency {value!r}: milliseconds like 500ms or 0.5s")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"invalid latency {value!r}: must be positive")
    return number


def _format_latency(value: float) -> str:
    return f"{value:g}ms"


def _fraction_percent(value: Any) -> float:
    """A percentage with decimals allowed ("99.5%"), kept as a float 0..100."""
    if isinstance(value, str) and value.strip().endswith("%"):
        value = value.strip()[:-1]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid percentage {value!r}: e.g. 99.5%") from None
    if isinstance(value, bool) or not math.isfinite(number) or not 0 <= number <= 100:
        raise ValueError(f"percentage {value!r} out of range 0..100%")
    return number


Latency = Annotated[float, BeforeValidator(_latency), PlainSerializer(_format_latency, return_type=str)]
Share = Annotated[float, BeforeValidator(_fraction_percent), PlainSerializer(lambda v: f"{v:g}%", return_type=str)]


class StepRange(Model):
    """`step: 10%, maximum: 50%` -> 10, 20, 30, 40, 50."""

    step: Percent
    maximum: Percent = 100

    @model_validator(mode="after")
    def _rules(self) -> "StepRange":
        problems = Problems()
        if self.step <= 0:
            problems.add(("step",), "must be more than 0%")
        if self.maximum < self.step:
            problems.add(("maximum",), "must be at least the step")
        problems.check()
        return self

    def weights(self) -> list[int]:
        out = list(range(self.step, self.maximum + 1, self.step))
        return out if out[-1] == self.maximum else out + [self.maximum]


def _steps(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [parse_percent(v) for v in value]
    return value


class SuccessRate(Model):
    """The share of canary requests that did not end in a 5xx."""

    minimum: Share | None = None  # absolute floor
    versus_stable: Share | None = None  # at most this many points below the stable route

    @model_validator(mode="after")
    def _one(self) -> "SuccessRate":
        if self.minimum is None and self.versus_stable is None:
            Problems([((), "give `minimum` (absolute), `versus_stable` (relative), or both")]).check()
        return self


class LatencyThreshold(Model):
    """The canary's latency percentile (p50, p95 or p99 of the agents' windows)."""

    percentile: Literal[50, 95, 99] = 99
    maximum: Latency | None = None  # absolute ceiling
    versus_stable: Share | None = None  # at most this much above the stable route's, in percent

    @model_validator(mode="after")
    def _one(self) -> "LatencyThreshold":
        if self.maximum is None and self.versus_stable is None:
            Problems([((), "give `maximum` (absolute), `versus_stable` (relative), or both")]).check()
        return self


class Metrics(Model):
    success_rate: SuccessRate | None = None
    latency: LatencyThreshold | None = None


class Judge(Model):
    """A one-sided Mann-Whitney U test: fails a check when the canary's latencies are
    significantly greater than the stable route's at this confidence."""

    type: Literal["mann-whitney"] = "mann-whitney"
    confidence: Share = 95.0

    @model_validator(mode="after")
    def _range(self) -> "Judge":
        if not 50 <= self.confidence < 100:
            Problems([(("confidence",), "from 50% up to (not including) 100%")]).check()
        return self


def _url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 2048 or not _URL_RE.fullmatch(value):
        # Without its credentials: error messages never repeat them (secrets.redact_url).
        shown = f" {redact_url(value)!r}" if isinstance(value, str) and len(value) <= 2048 else ""
        raise ValueError(f"invalid webhook url{shown}: an http:// or https:// URL")
    return value


WebhookType = Literal["before_rollout", "before_increase", "before_promotion", "on_rollback"]


class Webhook(Model):
    name: Name
    type: WebhookType
    url: Annotated[str, BeforeValidator(_url)]
    timeout: Duration = 5
    metadata: MapOf(str, Scalar) = {}

    @model_validator(mode="after")
    def _timeout(self) -> "Webhook":
        if not 1 <= self.timeout <= MAX_WEBHOOK_TIMEOUT:
            Problems([(("timeout",), f"from 1s to {MAX_WEBHOOK_TIMEOUT}s")]).check()
        return self


class ReleasePolicy(Artifact):
    kind: ClassVar[str] = "release-policies"
    steps: Annotated[list[Percent], BeforeValidator(_steps)] | StepRange
    interval: Duration = 60
    failures: Annotated[int, Field(ge=1, le=100)] = 3
    minimum_requests: Annotated[int, Field(ge=1)] = 100
    inconclusive_limit: Annotated[int, Field(ge=1, le=100)] = 3
    # A step is judged only once the nodes acknowledge its weight; past this the check fails
    # ("weight not applied on N nodes"). docs/decisions/0018.
    apply_timeout: Duration = 30
    # Points the canary's observed share of the requests may be off its weight (a binomial
    # allowance widens it on small samples); further off: inconclusive.
    share_tolerance: Share = 10.0
    metrics: Metrics = Metrics()
    judge: Judge | None = None
    manual_approval: bool = False
    webhooks: ListOf(Webhook, at_most=MAX_WEBHOOKS) = []

    @model_validator(mode="after")
    def _rules(self) -> "ReleasePolicy":
        problems = Problems()
        weights = self.weights()
        if not weights:
            problems.add(("steps",), "at least one step")
        if len(weights) > MAX_STEPS:
            problems.add(("steps",), f"at most {MAX_STEPS} steps")
        if any(w <= 0 for w in weights):
            problems.add(("steps",), "every step is more than 0%")
        if any(b <= a for a, b in zip(weights, weights[1:])):
            problems.add(("steps",), "steps must increase")
        if not MIN_INTERVAL <= self.interval <= MAX_INTERVAL:
            problems.add(("interval",), f"from {MIN_INTERVAL}s to {MAX_INTERVAL}s")
        if not 1 <= self.apply_timeout <= MAX_APPLY_TIMEOUT:
            problems.add(("apply_timeout",), f"from 1s to {MAX_APPLY_TIMEOUT}s")
        names = [w.name for w in self.webhooks]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.add(("webhooks", i, "name"), f"webhook {name!r} appears more than once")
        problems.check()
        return self

    def weights(self) -> list[int]:
        return self.steps.weights() if isinstance(self.steps, StepRange) else list(self.steps)


class ReleasePolicyRef(Ref):
    kind: ClassVar[str] = "release-policies"


ReleasePolicyOrRef = ref_or(ReleasePolicyRef, ReleasePolicy)


def _gateway(value: Any) -> str:
    return check_gateway_name(value)


class Release(Artifact):
    kind: ClassVar[str] = "releases"
    gateway: Annotated[str, BeforeValidator(_gateway)]
    stable: Annotated[str, BeforeValidator(check_route_key)]
    canary: Annotated[str, BeforeValidator(check_route_key)]
    policy: ReleasePolicyOrRef
    description: SafeText | None = None

    @model_validator(mode="after")
    def _rules(self) -> "Release":
        if self.stable == self.canary:
            Problems([(("canary",), "the canary route must differ from the stable route")]).check()
        return self
