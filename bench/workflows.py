"""Workflows (issue 14, docs/decisions/0039): how fast a published event starts a workflow run,
and what runs and schedules cost on AWS, counted on moto (bench.common.local_aws) through the
chalice test client and app.py's own functions.

- Event -> run started: 50 events POSTed to /api/v1/events, each matching one event-scheduled
  `metrics` workflow; from just before the POST to the timestamp of the run's
  `workflows:<name>` + `started` event (the run happens in the process that took the POST, 0039).
- One run: a `metrics` built-in run (app.py's `workflow_run`, as EventBridge Scheduler invokes
  it) over a namespace of N gateways with agent-posted windows; Lambda run time (measured here,
  billed at the workflow_run function's memory), DynamoDB requests and units counted at the client
  (bench.releases' meter), events written.
- Idle month with N time-scheduled workflows (PT1M): EventBridge Scheduler invocations a month
  plus N x 43,800 measured runs; none scheduled costs nothing (Scheduler bills invocations only).
- The event path: what a POST /events costs with no workflow, with listeners cached (the
  listener list is kept 10 s per namespace, chalicelib/workflows/triggers.py), and when the cache
  has expired (one Query of the namespace's workflows).
- SLA breach -> a new instance serving through HAProxy, on a whole local stack (local/
  demo_release.isolated_stack: moto, etcd, the agent's HAProxy, the local driver, the scheduled
  pass every second): a cluster whose service answers in 200 ms, an SLA with upper 100 ms and
  scale_instances 1 -> 2, traffic through the external gateway; from the timestamp of the first
  agent window of the cluster's gateway over upper to HAProxy's runtime API (`show stat`) showing
  a first session on a server that was not there before. The goal: one SLA window (its interval)
  plus the driver's start time, measured in the same run (POST /deployments -> the instance
  running and HAProxy applying it). One run (a stack start is most of its ~8 s).
"""
from __future__ import annotations

import json
import math
import time
from datetime import datetime

from bench.common import ROOT, local_aws, percentiles, verdict

RUNS_A_MONTH = 60 * 730  # PT1M
LOG_BYTES_A_RUN = 600  # an estimate: Lambda's START/END/REPORT lines (~300 bytes) and the run's few log lines
PRICES = {
    "request": 0.20 / 1_000_000,  # Lambda, per invocation
    "gb_second": 0.0000166667,  # Lambda, x86
    "rru": 0.25 / 1_000_000,  # DynamoDB on-demand read request unit
    "wru": 1.25 / 1_000_000,  # DynamoDB on-demand write request unit
    "scheduler": 1.00 / 1_000_000,  # EventBridge Scheduler, per invocation (after 14M free a month)
    "log_gb": 0.50,  # CloudWatch Logs ingestion, per GB
}
GOAL_EVENT_TO_RUN_S = 1.0
NAMESPACE = "default"


def _stamp(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def _query(*tags) -> list[dict]:
    from chalicelib.store.event_backend import event_store
    from chalicelib.store.event_store import EventQuery

    return event_store().query(NAMESPACE, EventQuery(tags=list(tags), per_page=1000)).items


def _post(client, headers, path, body):
    r = client.http.post(path, headers=headers, body=json.dumps(body))
    assert r.status_code in (201, 202), (path, r.status_code, r.body)
    return json.loads(r.body) if r.body else None


def _gateways(client, headers, agent_headers, n: int, first: int = 0) -> None:
    """n gateways, each with one route and one agent-posted window (gateway and route figures)."""
    events = []
    for g in range(first, first + n):
        name, route = f"g{g}", f"[127.0.0.1:{18000 + g}]"
        _post(client, headers, "/api/v1/gateways",
              {"name": name, "port": f"{23000 + g}/http", "routes": {route: {"weight": "100%"}}})
        for tags in ([f"gateways:{name}"], [f"gateways:{name}", f"routes:{route}"]):
            for metric, value in (("requests", 120), ("errors", 0), ("responseTime", 12.0)):
                events.append({"tags": tags + [f"metrics:{metric}"], "type": "metrics", "value": value})
    for i in range(0, len(events), 20):
        _post(client, agent_headers, "/api/v1/events", events[i:i + 20])


def event_to_run(client, headers, n: int = 50) -> list[float]:
    _post(client, headers, "/api/v1/workflows",
          {"name": "on-go", "breed": "metrics", "schedule": {"event": ["bench-go"]}})
    out = []
    for i in range(n):
        t = time.time()
        published = _post(client, headers, "/api/v1/events", {"tags": ["bench-go"], "value": i})
        [started] = [e for e in _query("workflows:on-go", "started")
                     if (e["value"].get("trigger") or {}).get("id") == published["id"]]
        out.append(_stamp(started) - t)
    return out


def one_run(client, headers, meter, counting, memory_mb: int, workflow: str) -> dict:
    """A metrics run as EventBridge Scheduler invokes it (app.py's workflow_run), metered."""
    import app

    before_events = len(_query(f"workflows:{workflow}"))
    meter.calls = meter.rru = meter.wru = 0
    counting.on = True
    t = time.perf_counter()
    outcome = app.workflow_run({"namespace": NAMESPACE, "workflow": workflow}, None)
    wall = time.perf_counter() - t
    counting.on = False
    assert outcome.get("exit_code") == 0, outcome
    published = int(next(line.split()[1] for line in outcome["log"] if line.startswith("published ")))
    run_events = len(_query(f"workflows:{workflow}")) - before_events
    billed_s = math.ceil(wall * 1000) / 1000
    cost = {"Lambda": PRICES["request"] + billed_s * memory_mb / 1024 * PRICES["gb_second"],
            "DynamoDB": meter.rru * PRICES["rru"] + meter.wru * PRICES["wru"],
            "Logs": LOG_BYTES_A_RUN / 1e9 * PRICES["log_gb"]}
    return {"wall_s": wall, "calls": meter.calls, "rru": meter.rru, "wru": meter.wru,
            "events": published + run_events, "cost": cost, "total": sum(cost.values())}


def post_cost(client, headers, meter, counting, forget: bool, n: int = 10) -> dict:
    """A POST /events matching no workflow: DynamoDB requests and units, run time (median)."""
    from chalicelib.workflows import triggers

    walls = []
    meter.calls = meter.rru = meter.wru = 0
    for i in range(n):
        if forget:
            triggers.forget(NAMESPACE)  # the 10 s cache expired: the listeners are read again
        counting.on = True
        t = time.perf_counter()
        _post(client, headers, "/api/v1/events", {"tags": ["bench-nothing"], "value": i})
        walls.append(time.perf_counter() - t)
        counting.on = False
    return {"calls": meter.calls / n, "rru": meter.rru / n, "wru": meter.wru / n,
            "wall_s": sorted(walls)[n // 2]}


def _money(f: dict) -> float:
    return f["rru"] * PRICES["rru"] + f["wru"] * PRICES["wru"]


def main() -> None:
    import logging

    from chalice.test import Client

    from bench.releases import DynamoMeter, _counting

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("chalicelib.workflows").setLevel(logging.CRITICAL)
    memory_mb = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"].get("lambda_memory_size", 128)
    with local_aws("vamp-bench-workflows") as (_endpoint, token):
        import app
        from chalicelib.store import table
        from chalicelib.store.tokens import DynamoDBTokenStore
        from chalicelib.workflows import in_process

        agent, _ = DynamoDBTokenStore().create("bench-agent", role="agent", namespaces=["*"])
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        agent_headers = {"Authorization": f"Bearer {agent}", "Content-Type": "application/json"}
        meter = DynamoMeter()
        unwatch = [table.watch("provide-client-params.dynamodb", DynamoMeter.keep_params),
                   table.watch("after-call.dynamodb", meter)]
        try:
            with Client(app.app, stage_name="local") as client:
                print("\n== workflows: event -> run, cost of a run and of scheduled workflows (AWS public prices) ==")
                print(f"prices: Lambda $0.20/1M requests + $0.0000166667/GB-s at {memory_mb} MB (workflow_run, "
                      ".chalice/config.json); DynamoDB on-demand $1.25/1M WRU, $0.25/1M RRU; EventBridge Scheduler "
                      "$1.00/1M invocations (14M free a month); CloudWatch Logs $0.50/GB")

                # -- the event path before any workflow exists -------------------------------------
                _post(client, headers, "/api/v1/events", {"tags": ["warm"], "value": 0})  # imports, clients
                none = post_cost(client, headers, meter, _counting, forget=True)

                # -- event published -> run started --------------------------------------------------
                _gateways(client, headers, agent_headers, 1)
                samples = event_to_run(client, headers)
                p50, p99 = percentiles(samples)
                print(f"event published -> workflow run started (POST /api/v1/events -> the run's `started` event, "
                      f"{len(samples)} events, one listening metrics workflow, in-process on moto): p50 {p50:.1f} ms, "
                      f"p99 {p99:.1f} ms (goal < {GOAL_EVENT_TO_RUN_S * 1000:.0f} ms: "
                      f"{verdict(p99 / 1000 < GOAL_EVENT_TO_RUN_S)})")

                # -- one run, by the number of gateways ---------------------------------------------
                _post(client, headers, "/api/v1/workflows",
                      {"name": "m", "breed": "metrics", "schedule": {"time": {"period": "PT1M"}}})
                in_process.TIMER.clear()  # no local timer runs here: the runs below are invoked as the Scheduler does
                runs_by_n = {}
                have = 1
                for n in (1, 10, 50):
                    _gateways(client, headers, agent_headers, n - have, first=have)
                    have = n
                    one_run(client, headers, meter, _counting, memory_mb, "m")  # warm at this size
                    runs_by_n[n] = f = one_run(client, headers, meter, _counting, memory_mb, "m")
                    print(f"one metrics run over {n:2d} gateways (1 route each): {f['wall_s'] * 1000:.0f} ms "
                          f"run time (here), {f['calls']} DynamoDB requests ({f['rru']} RRU, {f['wru']} WRU), "
                          f"{f['events']} events written -> ${f['total']:.7f} a run (Lambda ${f['cost']['Lambda']:.7f}, "
                          f"DynamoDB ${f['cost']['DynamoDB']:.7f}, Logs ${f['cost']['Logs']:.8f})")

                # -- an idle month with N time-scheduled workflows -----------------------------------
                per_run = runs_by_n[1]["total"]
                print(f"idle month, N metrics workflows every PT1M ({RUNS_A_MONTH:,} runs each, over 1 gateway, "
                      f"${per_run:.7f} a run measured above):")
                print("  N =   0: $0 by construction, not measured: no schedule exists, nothing is invoked, and "
                      "EventBridge Scheduler bills invocations only (goal ~$0 idle with none scheduled)")
                for n in (1, 10, 100):
                    invocations = n * RUNS_A_MONTH
                    scheduler = max(0, invocations - 14_000_000) * PRICES["scheduler"]
                    runs_cost = invocations * per_run
                    print(f"  N = {n:3d}: {invocations:,} Scheduler invocations ${scheduler:.2f} "
                          f"(${invocations * PRICES['scheduler']:.2f} beyond the free tier) + runs "
                          f"${runs_cost:.2f} = ${scheduler + runs_cost:.2f} a month (${runs_cost / n:.2f} per "
                          f"workflow-month; per run ${per_run:.7f})")

                # -- the event path: POST /events with and without listeners -------------------------
                for w in range(5):  # listeners on other tags: looked up, never triggered
                    _post(client, headers, "/api/v1/workflows",
                          {"name": f"l{w}", "breed": "metrics", "schedule": {"event": [f"other-{w}"]}})
                _post(client, headers, "/api/v1/events", {"tags": ["warm"], "value": 0})  # the writes' forget()
                cached = post_cost(client, headers, meter, _counting, forget=False)
                missed = post_cost(client, headers, meter, _counting, forget=True)
                lookup_rru = missed["rru"] - cached["rru"]
                count = len(json.loads(client.http.get("/api/v1/workflows", headers=headers).body))
                print("POST /api/v1/events of one event matching no workflow (DynamoDB at the client, median run time):")
                for label, f in (("no workflow in the namespace, cache expired", none),
                                 (f"{count} workflows, listeners cached (within 10 s)", cached),
                                 (f"{count} workflows, cache expired (listeners read)", missed)):
                    print(f"  {label:50s}: {f['calls']:.1f} requests ({f['rru']:.1f} RRU, {f['wru']:.1f} WRU) "
                          f"${_money(f):.8f}, {f['wall_s'] * 1000:.1f} ms")
                worst = 30 * 24 * 360 * lookup_rru * PRICES["rru"]
                print(f"  the listener lookup: {missed['calls'] - cached['calls']:.1f} request ({lookup_rru:.1f} RRU) "
                      f"at most once per 10 s per warm Lambda instance and namespace: <= ${worst:.4f} a month each, "
                      f"whatever the event rate (an event-scheduled workflow costs a run only when triggered)")
        finally:
            for u in unwatch:
                u()
            in_process.TIMER.clear()

    f = sla_to_serving()
    goal = f["interval"] + f["driver_start_s"]
    e = f["escalation"]
    print(f"SLA breach -> new instance serving through HAProxy (local stack, service at 200 ms, SLA upper "
          f"{e['sla']['threshold']['upper']} ms over {f['interval']} s, {e['type']} {e['before']} -> {e['after']}, "
          f"the scheduled pass every 1 s here): first agent window over upper -> escalation event "
          f"{f['breach_to_escalation_s']:.2f} s -> first session on the new server {f['server'][1]} "
          f"{f['breach_to_serving_s']:.2f} s (goal <= one window {f['interval']} s + the driver's start "
          f"{f['driver_start_s']:.2f} s = {goal:.2f} s: {verdict(f['breach_to_serving_s'] <= goal)})")
    print("  (on AWS the pass runs every minute: add up to 60 s before the escalation, and the driver's start "
          "there: a pod or an ECS task)")


if __name__ == "__main__":
    main()


# -- SLA breach -> a new instance serving through HAProxy ---------------------------------------

def _haproxy_servers(master_socket) -> dict[tuple[str, str], int]:
    """(backend, server) -> sessions served, from HAProxy's runtime API (the agent's master CLI)."""
    from agent.haproxy import master_cli

    out = {}
    text = master_cli(master_socket, "@1 show stat")
    header = None
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split(",")
            continue
        if not header or not line.strip():
            continue
        row = dict(zip(header, line.split(",")))
        if row.get("svname") not in ("FRONTEND", "BACKEND"):
            out[(row["pxname"], row["svname"])] = int(row.get("stot") or 0)
    return out


def _servers_or_none(master_socket):
    try:
        return _haproxy_servers(master_socket)
    except OSError:
        return None


def sla_to_serving(interval: int = 2, latency_ms: int = 200, upper_ms: int = 100) -> dict:
    """On a whole local stack (the agent's HAProxy, the local driver running examples/canary/
    service.py slowed to `latency_ms`, traffic through the external gateway, the scheduled pass
    every second): a cluster whose SLA's upper is under the service's latency escalates
    scale_instances 1 -> 2. Measured: the first agent window of the cluster's gateway over upper ->
    the escalation event -> HAProxy's first session on the new server."""
    import io
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from local.demo_release import (
        CLUSTER,
        DEPLOYMENT,
        INTERNAL,
        Api,
        Demo,
        Profile,
        Traffic,
        blueprint,
        demo_port,
        isolated_stack,
        wait_for,
    )

    sla = {"type": "response_time_sliding_window", "threshold": {"upper": upper_ms, "lower": 0},
           "window": {"interval": interval, "cooldown": 60},
           "escalations": [{"type": "scale_instances", "minimum": 1, "maximum": 2, "scale_by": 1}]}
    with tempfile.TemporaryDirectory() as tmp, isolated_stack(Path(tmp), window=1.0) as stack:
        demo = Demo(Api(stack.api_url, stack.token), Console(file=io.StringIO(), width=150), Profile(), stack.agent.url)
        [master] = list(Path(stack.agent.work_dir).rglob("master.sock"))
        port = demo_port()
        doc = blueprint("1", port=port)
        service = doc["clusters"][CLUSTER]["services"][0]
        service["breed"]["environment_variables"]["LATENCY_MS"] = str(latency_ms)
        doc["clusters"][CLUSTER]["sla"] = sla
        traffic = None
        try:
            t = time.monotonic()
            demo.api.call("POST", "/deployments", expect=(202,), json=doc)
            demo.port = port
            demo._until_deployed({"1"}, "version 1 to run")
            driver_start = time.monotonic() - t  # POST -> the instance running and HAProxy applying it
            before = wait_for("HAProxy's runtime API", lambda: _servers_or_none(master), 10)
            wall = time.time() - time.monotonic()
            traffic = Traffic(port, rate=20, workers=8).start()
            started = time.monotonic()

            def escalated():
                return demo.api.get("/events", params={"tag": ["escalations", f"deployments:{DEPLOYMENT}"],
                                                        "per_page": 10})

            def new_server():
                try:
                    now = _haproxy_servers(master)
                except OSError:  # the master re-executing for a reload: ask again
                    return []
                return [k for k, v in now.items() if k not in before and v > 0]

            served = wait_for("a new server serving through HAProxy", new_server, 40, interval=0.05)
            served_at = time.time()
            [escalation, *_] = wait_for("the escalation event", escalated, 5)
            windows = demo.api.get("/events", params={"tag": [f"gateways:{INTERNAL}", "metrics:responseTime"],
                                                        "per_page": 1000})
            over = [_stamp(e) for e in windows if isinstance(e.get("value"), (int, float)) and e["value"] > upper_ms
                    and not any(tag.startswith("routes:") for tag in e["tags"])
                    and _stamp(e) >= started + wall - 1.0]
            breach = min(over)
            return {"driver_start_s": driver_start, "breach_to_escalation_s": _stamp(escalation) - breach,
                    "breach_to_serving_s": served_at - breach, "server": served[0], "interval": interval,
                    "escalation": escalation["value"]}
        finally:
            if traffic:
                traffic.stop()
            demo.undeploy()
