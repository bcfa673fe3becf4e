"""A step counts only when it is live: the release waits for the nodes' acknowledgement of the
generation carrying its weight, fails the check past the policy's apply_timeout, and is rolled
back (or promoted) only once the nodes applied it. The ASL on moto, a fake agent acknowledging."""
from __future__ import annotations

import re
import time

from chalicelib.releases.analysis import INCONCLUSIVE, PASS, RouteFigures, share_allowance, share_result
from chalicelib.releases.model import now
from chalicelib.releases.plan import Plan

from .conftest import CANARY, STABLE, finished, make_gateway, release, run_until, weights


def test_looks_at_the_nodes_come_after_one_second_then_back_off_to_the_cap():
    plan = Plan(weights=[20], interval=30, failures=1, minimum_requests=1, inconclusive_limit=1)
    # agents acknowledge within ~100 ms: the first look after 1 s, not after min(interval, 5)
    assert [plan.poll_after(w) for w in (0, 0.4, 1, 2.5, 4, 9, 3600)] == [1, 1, 1, 2, 4, 5, 5]
    short = Plan(weights=[20], interval=2, failures=1, minimum_requests=1, inconclusive_limit=1)
    assert short.poll_after(3600) == 2  # never longer than an interval


def test_a_written_weight_and_a_waiting_rollback_are_looked_at_again_soon_then_less_often(api, sfn, traffic,
                                                                                          fake_agent):
    from local import stepfunctions

    outputs: list[tuple[str, dict]] = []

    def record(name, event, proceed):
        out = proceed(event)
        outputs.append((name, out))
        return out

    stepfunctions.interceptors.append(record)
    make_gateway(api)
    assert api.post("/api/v1/releases", release(interval="5s", apply_timeout="1s", failures=1)).status_code == 202
    run_until(api, "r1", traffic, lambda s: s["step"] == 1 or finished(s))
    fake_agent.paused = True  # 50% never gets there; the rollback waits for the node
    run_until(api, "r1", traffic, lambda s: s["phase_detail"].startswith("rolling back ("), timeout=60)
    time.sleep(4.5)
    fake_agent.paused = False
    assert run_until(api, "r1", None, finished)["phase"] == "rolled_back"
    set_weight = [o["poll"] for n, o in outputs if n == "release_set_weight" and o.get("next") == "await_live"]
    assert set_weight and set(set_weight) == {1}, outputs  # one second after the write, whatever the interval
    waits = [o["poll"] for n, o in outputs if n == "release_rollback" and o.get("next") == "await"]
    assert waits[:3] == [1, 1, 2] and max(waits) <= 5, waits  # then as long as already waited, capped


def test_a_step_is_judged_only_once_the_nodes_run_it(api, sfn, traffic, fake_agent):
    make_gateway(api)
    fake_agent.paused = True  # heartbeats the generation it has: the new weight never reaches it
    assert api.post("/api/v1/releases", release(apply_timeout="30s")).status_code == 202
    status = run_until(api, "r1", traffic, lambda s: s["step"] == 1 and "not live" in (s["waiting"] or ""))
    assert "not applied on 1 of 1 nodes (node-1)" in status["phase_detail"], status
    deadline = time.monotonic() + 2.5  # more than two intervals: no check of step 1 while not live
    while time.monotonic() < deadline:
        traffic.tick()
        time.sleep(0.2)
    status = api.get("/api/v1/releases/r1").json
    assert [c["step"] for c in status["checks"]] == [0] and status["live_since"] is None
    applied_from = now()
    fake_agent.paused = False
    status = run_until(api, "r1", traffic, lambda s: any(c["step"] == 1 for c in s["checks"]))
    first = next(c for c in status["checks"] if c["step"] == 1)
    assert first["since"] >= applied_from and first["verdict"] == "pass", first  # its window starts once live
    assert api.get("/api/v1/events?tag=releases:r1&tag=release:live&per_page=10").json
    assert run_until(api, "r1", traffic, finished)["phase"] == "promoted"


def test_a_weight_never_applied_fails_its_checks_and_the_rollback_waits_for_the_nodes(api, sfn, traffic, fake_agent):
    make_gateway(api)
    assert api.post("/api/v1/releases", release(apply_timeout="1s", failures=2)).status_code == 202
    run_until(api, "r1", traffic, lambda s: s["step"] == 1 or finished(s))
    fake_agent.paused = True  # the node stays at 20%: 50% never gets there
    status = run_until(api, "r1", traffic, lambda s: s["phase_detail"].startswith("rolling back (") or finished(s),
                       timeout=60)
    assert status["phase"] == "rolling_back", status
    failed = [c for c in status["checks"] if c["verdict"] == "fail"]
    assert len(failed) == 2 and all(c["weight"] == 50 and "weight 50% not applied on 1 of 1 nodes" in c["reason"]
                                    for c in failed), failed
    assert status["phase_detail"].startswith("rolling back (waiting for 1 node"), status
    time.sleep(2.5)  # several polls: still waiting, never "rolled back" while the node serves the canary
    assert api.get("/api/v1/releases/r1").json["phase"] == "rolling_back"
    fake_agent.paused = False
    status = run_until(api, "r1", None, finished)
    assert status["phase"] == "rolled_back" and status["waiting"] is None, status
    assert weights(api) == {STABLE: 100, CANARY: 0}


def test_with_no_node_reporting_nothing_is_live(api, sfn, traffic, fake_agent, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_NODE_SILENT_AFTER", "1")
    settings.cache_clear()
    make_gateway(api)
    fake_agent.stopped = True
    time.sleep(1.5)  # its last heartbeat is older than the bound: silent
    assert api.post("/api/v1/releases", release(apply_timeout="1s", failures=1)).status_code == 202
    status = run_until(api, "r1", traffic, lambda s: s["phase"] == "rolling_back" or finished(s))
    failed = [c for c in status["checks"] if c["verdict"] == "fail"]
    assert failed and "not applied on 0 of 0 known nodes" in failed[0]["reason"], status
    status = run_until(api, "r1", None, lambda s: s["phase_detail"].startswith("rolling back ("))
    assert "waiting for a gateway node to report" in status["phase_detail"]
    fake_agent.stopped = False
    assert run_until(api, "r1", None, finished)["phase"] == "rolled_back"
    settings.cache_clear()


def test_a_canary_share_far_from_its_weight_is_not_a_pass(api, sfn, traffic):
    make_gateway(api)
    traffic.set(CANARY, requests=50)  # at 20% the canary should get about 20 of 100 requests
    traffic.set(STABLE, requests=50)
    assert api.post("/api/v1/releases", release(inconclusive_limit=2, failures=1)).status_code == 202
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "rolled_back"
    judged = [c for c in status["checks"] if c["step"] >= 1]
    assert judged and all(c["verdict"] == "inconclusive" for c in judged), judged
    # The fake agents give the canary half the requests whatever the weight (windows straddling a
    # step change blend in a little of the one before): far from 20% either way.
    got = re.search(r"canary got ([0-9.]+)% of", judged[0]["reason"])
    assert got and float(got.group(1)) > 35 and "weight 20%" in judged[0]["reason"], judged[0]["reason"]


def test_the_share_allowance_is_the_policy_bound_widened_on_small_samples():
    plan = Plan(weights=[20], interval=1, failures=1, minimum_requests=10, inconclusive_limit=1, share_tolerance=5)
    assert share_allowance(20, 100_000, 5) == 5
    assert share_allowance(20, 100, 5) > 10  # 3 sigma of 100 draws at p=0.2: 12 points
    assert share_result(plan, 20, RouteFigures(requests=210), RouteFigures(requests=790))["verdict"] == PASS
    off = share_result(plan, 20, RouteFigures(requests=500), RouteFigures(requests=500))
    assert off["verdict"] == INCONCLUSIVE and off["value"] == 50.0
    assert share_result(plan, 20, RouteFigures(requests=2), RouteFigures(requests=3))["verdict"] == INCONCLUSIVE
