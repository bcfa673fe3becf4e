"""One check of a canary: figures of both routes over the window, a verdict per metric, and the
check's verdict (pass, fail, inconclusive). Pure."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from chalicelib.releases.judges import mann_whitney, merge_histograms
from chalicelib.releases.plan import Plan

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass
class RouteFigures:
    requests: int = 0
    errors: int = 0
    latency: float | None = None  # the plan's percentile, worst window (ms)
    histogram: dict[float, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return None if self.requests <= 0 else 100.0 * (self.requests - self.errors) / self.requests

    def as_dict(self) -> dict:
        sr = self.success_rate
        return {"requests": self.requests, "errors": self.errors,
                "success_rate": None if sr is None else round(sr, 3),
                "latency": self.latency, "samples": sum(self.histogram.values())}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def figures(events: list[dict], percentile: int) -> RouteFigures:
    """From a route's metric events (every agent, every window of the check)."""
    out = RouteFigures()
    latencies, histograms = [], []
    wanted = f"metrics:p{percentile}"
    for e in events:
        tags = e.get("tags", ())
        value = e.get("value")
        if "metrics:histogram" in tags:
            histograms.append(value)
        elif (n := _number(value)) is None:
            continue
        elif "metrics:requests" in tags:
            out.requests += int(n)
        elif "metrics:errors" in tags:
            out.errors += int(n)
        elif wanted in tags:
            latencies.append(n)
    out.latency = max(latencies) if latencies else None
    out.histogram = merge_histograms(histograms)
    return out


def _result(metric: str, verdict: str, value, threshold, reason: str) -> dict:
    return {"metric": metric, "verdict": verdict, "value": value, "threshold": threshold, "reason": reason}


def share_allowance(weight: int, requests: int, tolerance: float) -> float:
    """Points the observed canary share may be off `weight`: the policy's tolerance, widened to
    three standard deviations of a binomial share on small samples (so noise is not a finding)."""
    p = weight / 100
    return max(tolerance, 300 * math.sqrt(p * (1 - p) / requests)) if requests > 0 else 100.0


def share_result(plan: Plan, weight: int, canary: RouteFigures, stable: RouteFigures) -> dict:
    """Did the canary get about the share of the requests its weight gives it? A share far off
    means HAProxy does not route by the weight judged (not applied, another node, sticky
    clients): inconclusive, with the figures."""
    total = canary.requests + stable.requests
    if total < plan.minimum_requests:
        return _result("canary_share", INCONCLUSIVE, None, weight, f"{total} requests in all")
    observed = 100 * canary.requests / total
    allowed = share_allowance(weight, total, plan.share_tolerance)
    ok = abs(observed - weight) <= allowed
    return _result("canary_share", PASS if ok else INCONCLUSIVE, round(observed, 2), weight,
                   f"canary got {observed:.1f}% of {total} requests, weight {weight}% (allowed ±{allowed:.1f})")


def analyse(plan: Plan, canary: RouteFigures, stable: RouteFigures, weight: int | None = None) -> dict:
    """The check: {verdict, reason, canary, stable, results: [...]}. Below the minimum of canary
    requests the check is inconclusive whatever the figures say: never a pass. With `weight`
    (the canary's weight set), a canary share of the requests far from it is not a pass either."""
    results: list[dict] = []
    if weight is not None:
        results.append(share_result(plan, weight, canary, stable))
    enough = canary.requests >= plan.minimum_requests
    baseline = stable.requests >= plan.minimum_requests
    sr, ssr = canary.success_rate, stable.success_rate
    if plan.success_minimum is not None:
        if sr is None:
            results.append(_result("success_rate", INCONCLUSIVE, None, plan.success_minimum, "no canary requests"))
        else:
            ok = sr >= plan.success_minimum
            results.append(_result("success_rate", PASS if ok else FAIL, round(sr, 3), plan.success_minimum,
                                   f"{sr:.2f}% {'>=' if ok else '<'} {plan.success_minimum:g}%"))
    if plan.success_versus_stable is not None:
        if sr is None or not baseline:
            results.append(_result("success_rate_versus_stable", INCONCLUSIVE, sr, None, "no stable baseline"))
        else:
            floor = ssr - plan.success_versus_stable
            ok = sr >= floor
            results.append(_result("success_rate_versus_stable", PASS if ok else FAIL, round(sr, 3), round(floor, 3),
                                   f"{sr:.2f}% vs stable {ssr:.2f}% - {plan.success_versus_stable:g}"))
    p = f"p{plan.latency_percentile}"
    if plan.latency_maximum is not None:
        if canary.latency is None:
            results.append(_result(p, INCONCLUSIVE, None, plan.latency_maximum, "no canary latency"))
        else:
            ok = canary.latency <= plan.latency_maximum
            results.append(_result(p, PASS if ok else FAIL, canary.latency, plan.latency_maximum,
                                   f"{canary.latency:g}ms {'<=' if ok else '>'} {plan.latency_maximum:g}ms"))
    if plan.latency_versus_stable is not None:
        if canary.latency is None or stable.latency is None or not baseline:
            results.append(_result(f"{p}_versus_stable", INCONCLUSIVE, canary.latency, None, "no stable baseline"))
        else:
            ceiling = stable.latency * (1 + plan.latency_versus_stable / 100)
            ok = canary.latency <= ceiling
            results.append(_result(f"{p}_versus_stable", PASS if ok else FAIL, canary.latency, round(ceiling, 3),
                                   f"{canary.latency:g}ms vs stable {stable.latency:g}ms + {plan.latency_versus_stable:g}%"))
    if plan.judge_confidence is not None:
        alpha = 1 - plan.judge_confidence / 100
        n1, n2 = sum(canary.histogram.values()), sum(stable.histogram.values())
        test = mann_whitney(canary.histogram, stable.histogram) if min(n1, n2) >= plan.minimum_requests else None
        if test is None:
            results.append(_result("mann_whitney", INCONCLUSIVE, None, alpha,
                                   f"too few latency samples (canary {n1}, stable {n2})"))
        else:
            ok = test.p_greater >= alpha
            results.append(_result("mann_whitney", PASS if ok else FAIL, round(test.p_greater, 6), round(alpha, 6),
                                   f"p={test.p_greater:.4g} that canary latency is not greater (U={test.u:g}, z={test.z:.3f})"))
    failed = [r for r in results if r["verdict"] == FAIL]
    if not enough:
        verdict, reason = INCONCLUSIVE, f"{canary.requests} canary requests, fewer than {plan.minimum_requests}"
    elif failed:
        verdict, reason = FAIL, "; ".join(f"{r['metric']}: {r['reason']}" for r in failed)
    elif any(r["verdict"] == INCONCLUSIVE for r in results):
        verdict = INCONCLUSIVE
        reason = "; ".join(f"{r['metric']}: {r['reason']}" for r in results if r["verdict"] == INCONCLUSIVE)
    else:
        verdict, reason = PASS, "every metric within its threshold" if results else f"{canary.requests} requests, no metric thresholds"
    return {"verdict": verdict, "reason": reason, "canary": canary.as_dict(), "stable": stable.as_dict(),
            "results": results}
