"""Chaos during canary releases on a whole local stack (moto with Step Functions, the API, real
etcd, the agent as a process with a real HAProxy), with steady traffic of our own through
HAProxy to two backends (issue 9):

(a) etcd stopped for 30 s while a release runs (10% live, 40% next);
(b) the agent killed while a release runs, restarted 10 s later.

For each: failed requests, whether every check that passed judged the weight HAProxy served
(the canary's share of our requests in the check's window), the highest canary share HAProxy
gave while the fault lasted, the outcome, and whether the rollback reached HAProxy. The stack
killed and restarted (lost writes, leftovers, time to route again) is bench/local_restart.py.
"""
from __future__ import annotations

import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from bench.common import verdict
from local.backends import Backend, RecordedTraffic
from local.stack import free_port

ETCD_DOWN = 30.0
AGENT_DOWN = 10.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _wait(predicate, timeout: float = 120.0, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    return None


def _checks_true_to_haproxy(traffic: RecordedTraffic, status: dict) -> tuple[int, int]:
    """(passed checks whose window saw the weight HAProxy served, passed checks)."""
    passed = [c for c in status["checks"] if c["step"] and c["verdict"] == "pass"]
    good = sum(traffic.saw_weight(c["weight"], _epoch(c["since"]), _epoch(c["until"]))[0] for c in passed)
    return good, len(passed)


class Api:
    def __init__(self, stack) -> None:
        self.base, self.session = stack.api_url, requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.token}"

    def get(self, path: str) -> dict:
        return self.session.get(self.base + path, timeout=30).json()

    def send(self, method: str, path: str, body=None):
        return self.session.request(method, self.base + path, json=body, timeout=30)


def _release(api: Api, name: str, port: int, a: Backend, b: Backend, steps: list[str]) -> tuple[str, str]:
    stable, canary = f"[127.0.0.1:{a.port}]", f"[127.0.0.1:{b.port}]"
    r = api.send("PUT", f"/api/v1/gateways/{name}", {"name": name, "port": f"{port}/http",
                                                    "routes": {stable: {"weight": "100%"}, canary: {"weight": "0%"}}})
    assert r.status_code == 202, r.text
    _wait(lambda: (lambda n: n["applied"] == n["reporting"] == 1)(api.get("/api/v1/vga/nodes")))
    r = api.send("POST", "/api/v1/releases", {"name": name, "gateway": name, "stable": stable, "canary": canary,
                                              "policy": {"steps": steps, "interval": "2s", "failures": 1,
                                                         "inconclusive_limit": 1, "apply_timeout": "3s",
                                                         "minimum_requests": 5,
                                                         "metrics": {"success_rate": {"minimum": "90%"}}}})
    assert r.status_code == 202, r.text
    return stable, canary


def _report(label: str, traffic: RecordedTraffic, status: dict, fault: tuple[float, float], done_ok: bool) -> bool:
    good, total = _checks_true_to_haproxy(traffic, status)
    peak, _ = traffic.canary_share(*fault)
    weights = sorted({c["weight"] for c in status["checks"]})
    print(f"{label}: {traffic.failed()} failed of {len(traffic.seen)} requests; passed checks true to HAProxy "
          f"{good} of {total}; canary share while the fault lasted {peak:.1f}%; weights checked {weights}; "
          f"outcome {status['phase']}; rollback reached HAProxy: {done_ok}")
    return good == total and status["phase"] == "rolled_back" and done_ok


def _etcd_down(stack, api: Api) -> bool:
    a, b, port = Backend("A"), Backend("B"), free_port()
    try:
        with RecordedTraffic(port, pause=0.01) as traffic:
            _release(api, "chaos-etcd", port, a, b, ["10%", "40%", "80%"])
            _wait(lambda: (lambda s: s["step"] == 1 and s.get("live_since"))(api.get("/api/v1/releases/chaos-etcd")))
            stack.etcd.stop()
            stopped = time.time()
            time.sleep(ETCD_DOWN)
            stack.etcd.start()
            back = time.time()
            status = _wait(lambda: (lambda s: s if s["phase"] in ("promoted", "rolled_back", "failed") else None)(
                api.get("/api/v1/releases/chaos-etcd"))) or api.get("/api/v1/releases/chaos-etcd")
            time.sleep(2)
            after, served = traffic.canary_share(time.time() - 1.5)
            ok = _report(f"(a) etcd stopped {ETCD_DOWN:.0f} s", traffic, status, (stopped, back),
                         served > 0 and after == 0)
            return ok and traffic.canary_share(stopped, back)[0] < 20  # never past the last live 10%
    finally:
        a.stop()
        b.stop()


def _agent_killed(stack, api: Api) -> bool:
    a, b, port = Backend("A"), Backend("B"), free_port()
    try:
        with RecordedTraffic(port, pause=0.01) as traffic:
            _release(api, "chaos-agent", port, a, b, ["20%", "60%"])
            _wait(lambda: (lambda s: s["step"] == 1 and s.get("live_since"))(api.get("/api/v1/releases/chaos-agent")))
            stack.agent.stop_supervising()
            stack.agent.proc.kill()
            killed = time.time()
            silent = _wait(lambda: api.get("/api/v1/health/gateways/chaos-agent")["value"] == 0, timeout=20)
            time.sleep(AGENT_DOWN)
            stack.agent.start()
            status = _wait(lambda: (lambda s: s if s["phase"] in ("promoted", "rolled_back", "failed") else None)(
                api.get("/api/v1/releases/chaos-agent"))) or api.get("/api/v1/releases/chaos-agent")
            time.sleep(2)
            after, served = traffic.canary_share(time.time() - 1.5)
            print(f"    health reported the killed agent silent: {bool(silent)}")
            return _report(f"(b) agent killed for {AGENT_DOWN:.0f} s", traffic, status, (killed, killed + AGENT_DOWN),
                           served > 0 and after == 0) and bool(silent)
    finally:
        a.stop()
        b.stop()


def main() -> None:
    from local.demo_release import isolated_stack

    # A rollback ends the execution in a Fail state, and etcd away is logged by every publish: expected here.
    for name in ("moto.stepfunctions", "chalicelib.gateways.publisher", "chalicelib.gateways.writes", "werkzeug"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    print("== chaos: faults during canary releases, traffic through HAProxy ==")
    with tempfile.TemporaryDirectory() as tmp:
        with isolated_stack(Path(tmp), window=1.0, VAMP_NODE_SILENT_AFTER="4") as stack:
            api = Api(stack)
            ok_a = _etcd_down(stack, api)
            ok_b = _agent_killed(stack, api)
    print(f"goal: no step judged before it was live, no jump past the last live weight, rollbacks applied "
          f"({verdict(ok_a and ok_b)})")


if __name__ == "__main__":
    main()
