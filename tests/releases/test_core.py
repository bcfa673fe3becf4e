"""The pure core: the U test, analysis, decisions, plans."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.releases.analysis import RouteFigures, analyse, figures
from chalicelib.releases.decisions import decide, split
from chalicelib.releases.judges import counts_of, mann_whitney, merge_histograms
from chalicelib.releases.plan import Plan

samples = st.lists(st.integers(0, 20).map(float), min_size=1, max_size=40)


def brute_u(x, y):
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)


@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_u_matches_its_definition_and_the_symmetry(x, y):
    t = mann_whitney(counts_of(x), counts_of(y))
    assert t.u == pytest.approx(brute_u(x, y))
    other = mann_whitney(counts_of(y), counts_of(x))
    assert t.u + other.u == pytest.approx(len(x) * len(y))
    assert 0.0 <= t.p_greater <= 1.0
    assert t.p_greater + other.p_greater >= 1.0 - 1e-9  # one-sided p-values of opposite hypotheses


@settings(max_examples=100, deadline=None)
@given(samples, st.integers(1, 50).map(float))
def test_shifting_the_first_sample_up_never_raises_p(x, shift):
    y = [v + 0.5 for v in x]
    base = mann_whitney(counts_of(x), counts_of(y))
    shifted = mann_whitney(counts_of([v + shift for v in x]), counts_of(y))
    assert shifted.p_greater <= base.p_greater + 1e-12


def test_u_known_values():
    # Textbook values (scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")).
    x, y = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    t = mann_whitney(counts_of(x), counts_of(y))
    assert t.u == 17.0
    assert t.p_greater == pytest.approx(0.05555, abs=2e-3)
    everything_tied = mann_whitney({5.0: 10}, {5.0: 7})
    assert everything_tied.p_greater == 1.0 and everything_tied.z == 0.0
    assert mann_whitney({}, {1.0: 1}) is None


def test_large_shift_is_significant_and_equal_samples_are_not():
    stable = {20.0: 500, 25.0: 400, 30.0: 100}
    assert mann_whitney({40.0: 500, 45.0: 500}, stable).p_greater < 1e-9
    assert mann_whitney(dict(stable), stable).p_greater > 0.4


def test_histograms_merge_and_skip_garbage():
    merged = merge_histograms([[[10, 2], [20.5, 1]], [[10, 3]], "x", [[1, -1], ["a", 2], [float("nan"), 1]]])
    assert merged == {10.0: 5, 20.5: 1}


PLAN = Plan(weights=[10, 50], interval=1, failures=2, minimum_requests=10, inconclusive_limit=2,
            success_minimum=99.0, latency_maximum=100.0)


def fig(requests, errors=0, latency=20.0, hist=None):
    return RouteFigures(requests, errors, latency, hist or {latency: requests})


def test_analysis_verdicts():
    assert analyse(PLAN, fig(100), fig(100))["verdict"] == "pass"
    failing = analyse(PLAN, fig(100, errors=5), fig(100))
    assert failing["verdict"] == "fail" and "success_rate" in failing["reason"]
    assert analyse(PLAN, fig(100, latency=150), fig(100))["verdict"] == "fail"
    few = analyse(PLAN, fig(5), fig(100))
    assert few["verdict"] == "inconclusive"
    assert analyse(PLAN, fig(5, errors=5), fig(100))["verdict"] == "inconclusive"  # too few to judge either way
    assert analyse(PLAN, fig(0, latency=None), fig(100))["verdict"] == "inconclusive"


def test_relative_thresholds_and_judge():
    plan = Plan(weights=[10], interval=1, failures=1, minimum_requests=10, inconclusive_limit=1,
                success_versus_stable=1.0, latency_versus_stable=20.0, judge_confidence=95.0)
    mixed = {20.0: 50, 22.0: 50}
    ok = analyse(plan, fig(100, errors=1, latency=22, hist=mixed), fig(100, errors=1, latency=20, hist=mixed))
    assert ok["verdict"] == "pass", ok
    slow = analyse(plan, fig(100, latency=30), fig(100, latency=20))
    assert slow["verdict"] == "fail" and {r["metric"] for r in slow["results"] if r["verdict"] == "fail"} == {
        "p99_versus_stable", "mann_whitney"}
    no_baseline = analyse(plan, fig(100), fig(0, latency=None))
    assert no_baseline["verdict"] == "inconclusive"


def test_figures_from_events():
    t = ["gateways:g", "routes:r"]
    events = [{"tags": t + ["metrics:requests"], "value": 10}, {"tags": t + ["metrics:requests"], "value": 5},
              {"tags": t + ["metrics:errors"], "value": 1}, {"tags": t + ["metrics:p99"], "value": 30},
              {"tags": t + ["metrics:p99"], "value": 50}, {"tags": t + ["metrics:histogram"], "value": [[3, 4]]},
              {"tags": t + ["metrics:rate"], "value": 1.5}]
    f = figures(events, 99)
    assert (f.requests, f.errors, f.latency, f.histogram) == (15, 1, 50, {3.0: 4})
    assert math.isclose(f.success_rate, 100 * 14 / 15)


def test_decisions():
    assert decide(PLAN, 0, 0, 0, "pass").next == "set_weight"
    assert decide(PLAN, 1, 0, 0, "pass").step == 2
    assert decide(PLAN, 2, 0, 0, "pass").next == "promote"
    manual = Plan(**{**PLAN.__dict__, "manual_approval": True})
    assert decide(manual, 2, 0, 0, "pass").next == "approval"
    assert decide(manual, 2, 0, 0, "pass", approved=True).next == "promote"
    first = decide(PLAN, 1, 0, 0, "fail")
    assert (first.next, first.failures) == ("wait", 1)
    assert decide(PLAN, 1, 1, 0, "fail").next == "rollback"
    held = decide(PLAN, 1, 0, 0, "inconclusive")
    assert (held.next, held.inconclusive, held.failures) == ("wait", 1, 0)
    counted = decide(PLAN, 1, 0, 1, "inconclusive")
    assert (counted.next, counted.inconclusive, counted.failures) == ("wait", 0, 1)
    assert decide(PLAN, 1, 1, 1, "inconclusive").next == "rollback"


@given(st.lists(st.sampled_from(["inconclusive"]), min_size=1, max_size=30))
def test_inconclusive_never_passes(verdicts):
    step, failures, streak = 1, 0, 0
    for v in verdicts:
        d = decide(PLAN, step, failures, streak, v)
        assert d.next in ("wait", "rollback")
        if d.next == "rollback":
            break
        failures, streak = d.failures, d.inconclusive


def test_split_and_plan_weights():
    assert split(100, 20) == (80, 20) and split(60, 50) == (30, 30) and split(100, 0) == (100, 0)
    assert PLAN.weight(0) == 0 and PLAN.weight(2) == 50


def test_only_a_deployment_service_route_is_retired(aws):
    """Promotion slices the stable service off its deployment; a plain gateway route, or a
    deployment already without it (a retried task), is left alone."""
    from chalicelib.releases.tasks import retire_stable_service
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    store = DynamoDBArtifactStore()
    assert retire_stable_service(store, "default", "shop/v1/web") is None
    assert retire_stable_service(store, "default", "[127.0.0.1:8080]") is None
    assert retire_stable_service(store, "default", "nodeployment/web/web:1/port") is None
