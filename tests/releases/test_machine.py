"""End to end on the local stack: the ASL on moto's interpreter, tasks delivered in-process."""
from __future__ import annotations

import time

from .conftest import CANARY, STABLE, finished, make_gateway, release, run_until, weights


def test_healthy_release_is_promoted(api, sfn, traffic):
    make_gateway(api)
    r = api.post("/api/v1/releases", release())
    assert r.status_code == 202, r.body
    assert r.json["phase"] == "progressing" and r.json["weights"] == [20, 50]
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "promoted", status
    assert weights(api) == {CANARY: 100}
    verdicts = [c["verdict"] for c in status["checks"]]
    assert verdicts == ["pass", "pass", "pass"], status["checks"]
    events = api.get("/api/v1/events", headers={}).json
    assert events is not None


def test_failing_release_is_rolled_back_within_interval_times_threshold(api, sfn, traffic):
    make_gateway(api)
    traffic.set(CANARY, errors=25)  # half the canary's requests fail
    assert api.post("/api/v1/releases", release(failures=2)).status_code == 202
    at_step = run_until(api, "r1", traffic, lambda s: s["step"] >= 1 or finished(s))
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "rolled_back", status
    # Rolled back at the second failed check, not later (how fast in seconds: `make bench`).
    assert len(status["checks"]) - len(at_step["checks"]) <= 2, status["checks"]
    assert weights(api) == {STABLE: 100, CANARY: 0}
    assert at_step["weight"] == 20
    failed = [c for c in status["checks"] if c["verdict"] == "fail"]
    assert len(failed) == 2 and all("success_rate" in c["reason"] for c in failed)
    assert status["failures"] == 2 and "rolling back" in status["reason"]
    history = api.get("/api/v1/events?tag=releases:r1&type=release&per_page=100").json
    tags = {t for e in history for t in e["tags"] if t.startswith("release:")}
    assert {"release:progressing", "release:step", "release:check", "release:rolling_back", "release:rolled_back"} <= tags
    assert all("gateways:shop" in e["tags"] for e in history)


def test_abort_rolls_back_at_once(api, sfn, traffic):
    make_gateway(api, stable_weight=100)
    assert api.post("/api/v1/releases", release(interval="30s", steps=["40%"])).status_code == 202
    run_until(api, "r1", None, lambda s: s["step"] == 1)
    assert weights(api) == {STABLE: 60, CANARY: 40}
    r = api.post("/api/v1/releases/r1/abort")
    assert r.status_code == 202 and r.json["phase"] == "rolled_back", r.body
    assert weights(api) == {STABLE: 100, CANARY: 0}
    import boto3

    client = boto3.client("stepfunctions", endpoint_url=sfn and __import__("os").environ["VAMP_AWS_ENDPOINT"])
    described = client.describe_execution(executionArn=r.json["execution"])
    assert described["status"] == "ABORTED"
    assert api.post("/api/v1/releases/r1/abort").status_code == 409
    assert api.post("/api/v1/releases/r1/resume").status_code == 409


def test_approval_gate_holds_until_approved(api, sfn, traffic):
    make_gateway(api)
    assert api.post("/api/v1/releases", release(steps=["50%"], manual_approval=True)).status_code == 202
    status = run_until(api, "r1", traffic, lambda s: s["awaiting"] == "approval" or finished(s))
    assert status["phase"] == "awaiting_approval"
    deadline = time.monotonic() + 2.5  # three intervals: nothing moves
    while time.monotonic() < deadline:
        traffic.tick()
        time.sleep(0.25)
    status = api.get("/api/v1/releases/r1").json
    assert status["phase"] == "awaiting_approval" and weights(api) == {STABLE: 50, CANARY: 50}
    assert api.post("/api/v1/releases/r1/approve").status_code == 202
    status = run_until(api, "r1", None, finished)
    assert status["phase"] == "promoted" and weights(api) == {CANARY: 100}


def test_pause_holds_the_weight_until_resumed(api, sfn, traffic):
    make_gateway(api)
    assert api.post("/api/v1/releases", release(steps=["30%", "60%"])).status_code == 202
    run_until(api, "r1", traffic, lambda s: s["step"] >= 1)
    assert api.post("/api/v1/releases/r1/pause").json["phase"] == "paused"
    status = run_until(api, "r1", traffic, lambda s: s["awaiting"] == "pause")
    held = weights(api)
    time.sleep(1.5)
    assert api.get("/api/v1/releases/r1").json["phase"] == "paused" and weights(api) == held
    assert api.post("/api/v1/releases/r1/resume").json["phase"] == "progressing"
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "promoted", status


def test_a_task_that_raises_ends_in_rollback(api, sfn, traffic):
    from local import stepfunctions

    def broken(name, event, proceed):
        if name == "release_analyse" and event.get("step", 0) >= 1:
            raise RuntimeError("metric source down")
        return proceed(event)

    stepfunctions.interceptors.append(broken)
    make_gateway(api)
    assert api.post("/api/v1/releases", release()).status_code == 202
    status = run_until(api, "r1", traffic, finished, timeout=30)
    assert status["phase"] == "rolled_back"
    assert "RuntimeError" in status["reason"] and "metric source down" in status["reason"]
    assert weights(api) == {STABLE: 100, CANARY: 0}


def test_a_retried_task_does_not_apply_twice(api, sfn, traffic):
    """Every task's first delivery does its work and then fails (as a Lambda timing out after its
    side effects would): Step Functions retries it, and the retry changes nothing."""
    from local import stepfunctions

    seen = set()

    def flaky(name, event, proceed):
        result = proceed(event)
        key = (name, event.get("step"), event.get("check"))
        if name != "release_gate" and key not in seen:
            seen.add(key)
            raise TimeoutError("lost the answer")
        return result

    stepfunctions.interceptors.append(flaky)
    make_gateway(api)
    before = int(api.get("/api/v1/gateways/shop").headers["ETag"].strip('"'))
    assert api.post("/api/v1/releases", release()).status_code == 202
    # Not a timing test: every task is delivered twice, each retry after Step Functions' backoff,
    # which a loaded CI machine stretches.
    status = run_until(api, "r1", traffic, finished, timeout=150)
    assert status["phase"] == "promoted", status
    after = int(api.get("/api/v1/gateways/shop").headers["ETag"].strip('"'))
    assert after - before == 3, status  # 20%, 50%, promotion: one write each
    assert [c["number"] for c in status["checks"]] == [1, 2, 3], status
    assert status["failures"] == 0
    steps = api.get("/api/v1/events?tag=releases:r1&tag=release:step&per_page=100").json
    assert len(steps) == 2, steps
    assert stepfunctions.invocations["release_set_weight"] >= 4


def test_inconclusive_never_passes(api, sfn, traffic):
    make_gateway(api)
    traffic.set(CANARY, requests=1)  # a few per check, below minimum_requests: every check is inconclusive
    assert api.post("/api/v1/releases", release(inconclusive_limit=2, failures=1, minimum_requests=50)).status_code == 202
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "rolled_back"
    metric_checks = [c for c in status["checks"] if c["step"] >= 1]
    assert metric_checks and all(c["verdict"] == "inconclusive" for c in metric_checks)
    assert status["step"] == 1 and weights(api) == {STABLE: 100, CANARY: 0}
