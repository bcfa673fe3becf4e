"""The watch's pure core (vamp_cli/release_watch.py) on a hand-made status and metric events:
what the live view and the line-per-change form show, without a stack."""
from __future__ import annotations

from rich.console import Console

from vamp_cli import release_watch as rw

ROUTES = {"stable": "shop/web/web:1/port", "canary": "shop/web/web:2/port"}


def status(phase="progressing", step=1, weight=20, checks=(), **more) -> dict:
    return {"name": "r", "phase": phase, "step": step, "steps": 2, "weight": weight, "weights": [20, 50],
            "interval": "4s", "failures": 0, "failure_threshold": 2, "reason": "started",
            "spec": {"gateway": "shop/web/port", **ROUTES}, "checks": list(checks), **more}


CHECK = {"number": 1, "step": 1, "weight": 20, "verdict": "fail", "reason": "success_rate: 80.00% < 95%",
         "canary": {"requests": 50}, "stable": {"requests": 200}, "decision": "hold",
         "decision_reason": "check failed: 1 of 2 failed checks",
         "results": [{"metric": "success_rate", "verdict": "fail", "value": 80.0, "threshold": 95.0},
                     {"metric": "p99", "verdict": "pass", "value": 12.0, "threshold": 250.0}]}


def metric(route: str, metric: str, value, stamp: str, n: int) -> dict:
    return {"id": f"{stamp}-{route}-{metric}-{n}", "type": "metrics", "timestamp": stamp, "value": value,
            "tags": ["gateways:shop/web/port", f"routes:{route}", f"metrics:{metric}"]}


def screen(renderable) -> str:
    console = Console(width=160, record=True, color_system="truecolor", force_terminal=True)
    console.print(renderable)
    return console.export_text(styles=False, clear=False), console.export_text(styles=True)


def test_changes_lists_each_change_once():
    first = rw.changes(None, status())
    assert first == ["phase progressing: started", "step 1/2 weight 20%"]
    assert rw.changes(status(), status()) == []  # nothing repeated
    later = rw.changes(status(), status(checks=[CHECK], waiting="weight 20% applied on 1 of 2 nodes"))
    assert later[0].startswith("check 1 step 1 weight 20%: FAIL (canary 50 req, stable 200 req; "
                               "success_rate 80% (>= 95%) fail; p99 12ms (<= 250ms) pass)")
    assert later[1] == "waiting: weight 20% applied on 1 of 2 nodes"
    done = rw.changes(status(checks=[CHECK]), status("rolled_back", 0, 0, [CHECK], reason="rolled back"))
    assert done == ["phase rolled_back: rolled back", "step 0/2 weight 0%"]


def test_the_check_before_the_rollout_has_no_figures():
    before = {"number": 1, "step": 0, "weight": 0, "verdict": "pass", "reason": "before rollout",
              "decision": "next", "decision_reason": "check passed: 20% next", "results": []}
    assert rw.check_line(before) == "check 1 step 0 weight 0%: PASS (before rollout) -> check passed: 20% next"


def test_render_shows_phase_plan_checks_and_sparklines_with_the_failing_value_in_red():
    w = rw.Watch("r", status(checks=[CHECK], waiting="the next check"))
    events = []
    for i, (rate, errors) in enumerate([(10, 0), (20, 2), (40, 8)]):
        stamp = f"2026-01-01T00:00:0{i}Z"
        events += [metric(ROUTES["canary"], "requests", rate, stamp, i), metric(ROUTES["canary"], "rate", rate, stamp, i),
                   metric(ROUTES["canary"], "errors", errors, stamp, i), metric(ROUTES["canary"], "p99", 5 + i, stamp, i),
                   metric("elsewhere", "requests", 99, stamp, i)]
    w.take(events)
    w.take(events)  # the seed and the stream overlap: taken once
    assert [x.requests for x in w.windows[ROUTES["canary"]]] == [10, 20, 40]
    text, styled = screen(rw.render(w))
    assert "phase progressing" in text and "step 1/2  weight 20%" in text and "waiting for: the next check" in text
    assert "0% → [20%] → 50% → 100%" in text
    assert "success_rate: 80% (>= 95%)" in text and "p99: 12ms (<= 250ms)" in text
    assert "▁▃█" in text and "80%" in text  # the canary's request rate, its last success rate
    red = [line for line in styled.splitlines() if "success_rate: 80% (>= 95%)" in line][0]
    assert "\x1b[1;31m" in red  # the failing figure in bold red


def test_exit_codes_tell_the_outcomes_apart():
    assert rw.exit_code(status("promoted")) == 0
    assert rw.exit_code(status("rolled_back", reason="check failed")) == 4
    assert rw.exit_code(status("rolled_back", reason="aborted through the API")) == 5
    assert rw.exit_code(status("failed")) == 6
    assert rw.exit_code(status("paused")) is None
