"""What a release costs on AWS, counted on the local stack, and how fast a bad canary is undone.

Per release (a healthy 5-step release, promoted): the Step Functions state transitions (from the
execution history), the Lambda invocations of its tasks and their run time, and the DynamoDB
requests its tasks (and the start call) make, with the request units they would bill, priced
at AWS's public prices (printed). Idle: no release runs anything (no execution, no schedule);
the control plane's own idle cost, its every-minute pass, is bench/idle.py's. Detect-to-rollback, through real traffic: on a whole local stack (the agent's HAProxy,
the local driver running examples/canary/service.py, 50 requests/s through the gateway), a canary
answering 500 to 30% of its requests is released with a 1 s interval and rollback at the first
failed check; measured from the end of the first agent metric window that holds canary errors
to the last request HAProxy gave the canary (after it, 0% canary traffic through HAProxy).
"""
from __future__ import annotations

import json
import math
import threading
import time

from bench.common import ROOT, local_aws, verdict

PRICES = {
    "transition": 0.025 / 1000,  # Standard workflows, per state transition
    "request": 0.20 / 1_000_000,  # Lambda, per invocation
    "gb_second": 0.0000166667,  # Lambda, x86
    "wru": 1.25 / 1_000_000,  # DynamoDB on-demand write request unit
    "rru": 0.25 / 1_000_000,  # DynamoDB on-demand read request unit
}
GOAL_RELEASE = 0.002
GATEWAY, STABLE, CANARY = "shop", "shop/v1/web", "shop/v2/web"
_counting = threading.local()


def _size(value) -> int:
    """DynamoDB's item size, near enough: names plus values as text."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("S", "N", "B", "BOOL", "NULL"):
            return len(str(next(iter(value.values()))).encode())
        return sum(len(k.encode()) + _size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_size(v) for v in value)
    return len(str(value).encode())


class DynamoMeter:
    """Counts requests and request units of calls made while `_counting.on` is set (this thread)."""

    def __init__(self):
        self.calls, self.wru, self.rru = 0, 0, 0
        self._lock = threading.Lock()

    @staticmethod
    def keep_params(params, context, **kwargs):
        context["metered_params"] = params

    def __call__(self, model, parsed, context, **kwargs):
        if not getattr(_counting, "on", False):
            return
        params = context.get("metered_params", {})
        op = model.name
        wru = rru = 0
        if op == "PutItem":
            wru = max(1, math.ceil(_size(params["Item"]) / 1024))
        elif op == "DeleteItem":
            wru = 1
        elif op == "UpdateItem":
            wru = max(1, math.ceil(_size(parsed.get("Attributes", {})) / 1024)) if parsed.get("Attributes") else 1
        elif op == "BatchWriteItem":
            for items in params["RequestItems"].values():
                wru += sum(max(1, math.ceil(_size(i.get("PutRequest", {}).get("Item", {})) / 1024)) for i in items)
        elif op == "TransactWriteItems":
            for item in params["TransactItems"]:
                body = next(iter(item.values()))
                wru += 2 * max(1, math.ceil(_size(body.get("Item", body.get("Key", {}))) / 1024))
        elif op == "GetItem":
            rru = max(1, math.ceil(_size(parsed.get("Item", {})) / 4096))
        elif op == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                rru += sum(max(1, math.ceil(_size(i) / 4096)) for i in items)
        elif op == "Query":
            rru = max(1, math.ceil(sum(_size(i) for i in parsed.get("Items", [])) / 4096))
        with self._lock:
            self.calls += 1
            self.wru += wru
            self.rru += rru


def _counted(fn, *args, **kwargs):
    _counting.on = True
    try:
        return fn(*args, **kwargs)
    finally:
        _counting.on = False


def _setup():
    from chalicelib.store import table
    from local import stepfunctions

    stepfunctions.setup(__import__("os").environ["VAMP_AWS_ENDPOINT"])
    meter = DynamoMeter()
    table.watch("provide-client-params.dynamodb", DynamoMeter.keep_params)
    table.watch("after-call.dynamodb", meter)
    durations: list[float] = []

    def timing(name, event, proceed):
        t = time.perf_counter()
        try:
            return _counted(proceed, event)
        finally:
            durations.append(time.perf_counter() - t)

    stepfunctions.interceptors[:] = [timing]
    return meter, durations


def _agents(stop: threading.Event, bad: dict, period: float = 0.25):
    """The agents' part, straight into the stores (their cost, not the release's): an
    acknowledgement of the generation the store holds (a node applying whatever is published),
    and metric windows for both routes, 400 requests split by the gateway's weights."""
    from chalicelib.contract.acknowledgement import Acknowledgement
    from chalicelib.gateways import snapshot
    from chalicelib.releases.router import effective
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.store.event_backend import event_store
    from chalicelib.store.event_store import new_event
    from chalicelib.store.node_store import DynamoDBNodeStore

    store, artifacts, nodes = event_store(), DynamoDBArtifactStore(), DynamoDBNodeStore(3600)
    while not stop.is_set():
        nodes.report(Acknowledgement(node="bench-node", namespace="default", checksum=None, status="applied",
                                     generation=snapshot.generation(artifacts, "default"), sent=time.time(),
                                     interval=period), time.time())
        events = []
        for gateway in (GATEWAY, "shop2"):
            found = artifacts.get("default", "gateways", gateway)
            weights = effective(found.document.get("routes") or {}) if found else {}
            pool = (weights.get(STABLE, 0) + weights.get(CANARY, 0)) or 1
            for route in (STABLE, CANARY):
                requests = round(400 * weights.get(route, 0) / pool)
                if requests <= 0:
                    continue
                errors = requests // 2 if (route == CANARY and bad.get("on")) else 0
                if route == CANARY and bad.get("on") and "first" not in bad:
                    bad["first"] = time.monotonic()
                tags = [f"gateways:{gateway}", f"routes:{route}"]
                hist = [[20, requests - requests // 5], [25, requests // 5]]
                for metric, value in (("requests", requests), ("errors", errors), ("p99", 25), ("histogram", hist)):
                    # as an agent token posts them: releases judge nothing else (decision 0022)
                    events.append(new_event(tags + [f"metrics:{metric}"], value, type="metrics",
                                            posted_by={"name": "bench-agent", "role": "agent"}))
        store.publish("default", events)
        stop.wait(period)


def _gateway(client, headers, name=GATEWAY, port=9050):
    body = {"name": name, "port": f"{port}/http", "routes": {STABLE: {"weight": "100%"}, CANARY: {"weight": "0%"}}}
    r = client.http.post("/api/v1/gateways", headers=headers, body=json.dumps(body))
    assert r.status_code in (201, 202), r.body


def _wait(client, headers, name, done, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(client.http.get(f"/api/v1/releases/{name}", headers=headers).body)
        if done(status):
            return status
        time.sleep(0.05)
    raise TimeoutError(name)


def _transitions(execution_arn: str) -> int:
    from chalicelib import aws

    sfn = aws.client("stepfunctions")
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def detect_to_rollback(runs: int = 3, interval: int = 1, window: float = 1.0) -> list[float]:
    """Seconds from the first bad metric window of a failing canary to its last request through
    HAProxy, per run, on a whole local stack with real traffic."""
    import io
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from rich.console import Console

    from local.demo_release import POLICY, Api, Demo, Profile, Traffic, demo_port, isolated_stack, route

    profile = Profile(steps=("20%", "50%"), interval=interval, failures=1, minimum_requests=5, rate=50, timeout=30)
    out: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, isolated_stack(Path(tmp), window=window) as stack:
        demo = Demo(Api(stack.api_url, stack.token), Console(file=io.StringIO(), width=150), profile, stack.agent.url)
        port = demo_port()
        try:
            demo.store_policy()
            demo.deploy_v1(port)
            demo.traffic = Traffic(port, profile.rate).start()
            wall = time.time() - time.monotonic()  # monotonic sample times -> epoch seconds
            for i in range(runs):
                version = str(2 + i)
                demo.merge(version, fail_rate=0.3)
                name = f"bench-bad-{version}"
                demo.release(name, "1", version, expect="rolled_back")
                time.sleep(0.5)  # requests in flight when HAProxy switched
                errors = demo.api.get("/events", params={"tag": [f"routes:{route(version)}", "metrics:errors"],
                                                          "per_page": 1000})
                bad = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
                       for e in errors if isinstance(e.get("value"), (int, float)) and e["value"] > 0]
                with demo.traffic._lock:
                    last = max(s.at for s in demo.traffic.samples if s.version == version)
                if not bad:
                    raise RuntimeError(f"{name}: no metric window with canary errors")
                out.append(last + wall - min(bad))
                demo.slice(version)
        finally:
            if demo.traffic:
                demo.traffic.stop()
            demo.undeploy()
    _ = POLICY
    return out


def main() -> None:
    from chalice.test import Client

    memory_mb = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"].get("lambda_memory_size", 128)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)  # a rolled-back release ends in a Fail state
    with local_aws("vamp-bench-releases") as (endpoint, token):
        import app
        from local import stepfunctions

        meter, durations = _setup()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        stop, bad = threading.Event(), {}
        agents = threading.Thread(target=_agents, args=(stop, bad), daemon=True)
        agents.start()
        try:
            with Client(app.app, stage_name="local") as client:
                _gateway(client, headers)
                # -- a healthy 5-step release ------------------------------------------------
                policy = {"steps": ["10%", "20%", "30%", "40%", "50%"], "interval": "1s", "failures": 2,
                          "minimum_requests": 50, "metrics": {"success_rate": {"minimum": "99%"},
                                                              "latency": {"maximum": "100ms"}}}
                release = {"name": "five", "gateway": GATEWAY, "stable": STABLE, "canary": CANARY, "policy": policy}
                stepfunctions.invocations.clear()
                t0 = time.monotonic()
                r = _counted(client.http.post, "/api/v1/releases", headers=headers, body=json.dumps(release))
                assert r.status_code == 202, r.body
                status = _wait(client, headers, "five", lambda s: s["phase"] in ("promoted", "rolled_back"))
                took = time.monotonic() - t0
                assert status["phase"] == "promoted", status
                time.sleep(0.5)
                transitions = _transitions(status["execution"])
                invocations = sum(stepfunctions.invocations.values())
                gb_s = sum(math.ceil(d * 1000) / 1000 for d in durations) * memory_mb / 1024
                cost = {
                    "Step Functions": transitions * PRICES["transition"],
                    "Lambda requests": invocations * PRICES["request"],
                    "Lambda GB-s": gb_s * PRICES["gb_second"],
                    "DynamoDB writes": meter.wru * PRICES["wru"],
                    "DynamoDB reads": meter.rru * PRICES["rru"],
                }
                total = sum(cost.values())
                print("\n== releases: cost per release (AWS public prices) ==")
                print("prices: Step Functions Standard $0.025/1,000 transitions; Lambda $0.20/1M requests + "
                      f"$0.0000166667/GB-s at {memory_mb} MB (.chalice/config.json); DynamoDB on-demand "
                      "$1.25/1M WRU, $0.25/1M RRU")
                print(f"5-step release (interval 1 s, promoted in {took:.1f} s):")
                print(f"  state transitions {transitions:5d}   ${cost['Step Functions']:.6f}")
                print(f"  Lambda invocations {invocations:4d}   ${cost['Lambda requests']:.6f}  "
                      f"+ {gb_s:.3f} GB-s ${cost['Lambda GB-s']:.6f} (run time measured locally)")
                print(f"  DynamoDB requests {meter.calls:5d}   {meter.wru} WRU ${cost['DynamoDB writes']:.6f}, "
                      f"{meter.rru} RRU ${cost['DynamoDB reads']:.6f}")
                print(f"  total ${total:.6f} per release  (goal <= ${GOAL_RELEASE}: {verdict(total <= GOAL_RELEASE)})")
                print("  (the per-window metric events the agents post are the gateways' cost, not counted here)")

                # -- idle ----------------------------------------------------------------------
                from chalicelib import aws

                sfn, events = aws.client("stepfunctions"), aws.client("events")
                stepfunctions.invocations.clear()
                before = meter.calls
                time.sleep(3)
                running = sfn.list_executions(stateMachineArn=stepfunctions.create_machine(), statusFilter="RUNNING")["executions"]
                rules = events.list_rules().get("Rules", [])
                idle = sum(stepfunctions.invocations.values())
                print(f"idle 3 s: {len(running)} executions running, {len(rules)} EventBridge schedules, "
                      f"{idle} Lambda invocations, {meter.calls - before} DynamoDB requests by releases -> $0 "
                      f"({verdict(not running and not rules and idle == 0)})")

        finally:
            stop.set()
            agents.join(timeout=5)
            stepfunctions.interceptors.clear()

    # -- detect to rollback, through HAProxy ---------------------------------------------------
    interval = 1
    rollouts = detect_to_rollback(interval=interval)
    worst = max(rollouts)
    print(f"detect-to-rollback through HAProxy (50 requests/s, canary failing 30% at 20%, interval {interval} s, "
          f"1 s metric windows, rollback at the first failed check; first window with canary errors -> last "
          f"request HAProxy gave the canary): {', '.join(f'{x:.2f}' for x in rollouts)} s; worst {worst:.2f} s "
          f"(goal <= interval + 2 s = {interval + 2} s: {verdict(worst <= interval + 2)})")


if __name__ == "__main__":
    main()
