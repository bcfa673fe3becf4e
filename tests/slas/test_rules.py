"""The pure rules: the decision from the figures, and escalation plans within their bounds."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.dsl.escalation import Escalation
from chalicelib.slas import rules


def test_decide_takes_the_worst_port_and_nothing_from_no_figures():
    assert rules.decide({"a": 10, "b": 300}, upper=200, lower=50) == "escalate"
    assert rules.decide({"a": 10, "b": 40}, upper=200, lower=50) == "deescalate"
    assert rules.decide({"a": 10, "b": 100}, upper=200, lower=50) is None
    assert rules.decide({"a": 200}, upper=200, lower=50) is None and rules.decide({"a": 50}, 200, 50) is None
    assert rules.decide({}, upper=200, lower=50) is None  # no traffic: no average, not below lower


def _doc(kind, lo, hi, by, target=None) -> dict:
    return {"type": kind, "minimum": lo, "maximum": hi, "scale_by": by, **({"target": target} if target else {})}


def _scale(*args, **kw):
    return Escalation.model_validate(_doc(*args, **kw))


scales = st.tuples(st.sampled_from(["scale_instances", "scale_cpu", "scale_memory"]),
                   st.integers(0, 8), st.integers(0, 8), st.integers(1, 3))


@given(st.lists(scales, min_size=1, max_size=4), st.sampled_from(["to_one", "to_all"]),
       st.sampled_from([rules.ESCALATE, rules.DEESCALATE]), st.integers(0, 8))
def test_every_action_stays_within_its_bounds_and_to_one_acts_once(children, group, direction, start):
    nodes = [_doc(k, min(lo, hi), max(lo, hi), by) for k, lo, hi, by in children]
    root = Escalation.model_validate({"type": group, "escalations": nodes})
    state = {"web": ("web:1", {"instances": float(start), "cpu": float(start), "memory": float(start)})}
    plan = rules.plan("web", [root], direction, state, lambda e: e)
    for a in plan.actions:
        assert a.minimum <= a.after <= a.maximum
        assert a.after == (a.before + a.scale_by if direction == rules.ESCALATE else a.before - a.scale_by)
    if group == "to_one":
        assert len(plan.actions) <= 1
    assert len(plan.actions) + len(plan.refused) >= 1  # each child acted, or said why not


def test_to_one_order_and_to_all_chaining():
    up_a, up_b = _doc("scale_instances", 1, 10, 1), _doc("scale_cpu", 0.5, 4, 0.5)
    to_one = Escalation.model_validate({"type": "to_one", "escalations": [up_a, up_b]})
    state = lambda: {"web": ("web:1", {"instances": 2.0, "cpu": 1.0, "memory": 256.0})}  # noqa: E731
    assert [a.field for a in rules.plan("web", [to_one], rules.ESCALATE, state(), lambda e: e).actions] == ["instances"]
    assert [a.field for a in rules.plan("web", [to_one], rules.DEESCALATE, state(), lambda e: e).actions] == ["cpu"]
    twice = Escalation.model_validate({"type": "to_all", "escalations": [up_a, up_a]})
    plan = rules.plan("web", [twice], rules.ESCALATE, state(), lambda e: e)
    assert [(a.before, a.after) for a in plan.actions] == [(2, 3), (3, 4)]  # each on what the one before left


def test_a_target_without_a_service_and_an_unknown_reference_change_nothing():
    plan = rules.plan("web", [_scale("scale_instances", 1, 5, 1, target="db"), "ref"], rules.ESCALATE,
                      {"web": ("web:1", {"instances": 1.0, "cpu": 1.0, "memory": 1.0})},
                      lambda e: None if e == "ref" else e)
    assert plan.actions == [] and [r["why"] for r in plan.refused] == [
        "cluster db has no service to scale", "unknown escalation"]
