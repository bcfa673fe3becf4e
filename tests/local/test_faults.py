"""The local stack survives faults: `python -m local run` in a subprocess, written to through its
API, killed (SIGKILL) and started again on the same state dir; stopped with SIGINT.

What is asserted: nothing the killed stack started survives it (every descendant, found before
the kill); the restarted stack starts, holds every write acknowledged before the kill (the
journal's bound for a killed process: none lost), ends the release that ran with a reason, routes
the deployment's service through its gateway again within a few scheduled passes (counted in its
log, not timed), applies a gateway PUT in HAProxy; an agent killed meanwhile is restarted; a
second stack on the same state dir is refused; SIGINT stops it with nothing left behind.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import requests

from chalicelib.drivers.processes import running, start_time
from local.stack import free_port, free_port_in
from tests.agent.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "examples" / "canary" / "service.py"
TOKEN = "local-faults-test-token-0123456789"
PASS_LINE = re.compile(r"scheduled scheduled_pass run (\d+)")

pytestmark = pytest.mark.slow


def descendants(pid: int) -> dict[int, int]:
    """pid -> start time of every process below `pid` (and `pid` itself)."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout.split("\n")
    children: dict[int, list[int]] = {}
    for row in rows:
        if row.strip():
            child, parent = map(int, row.split())
            children.setdefault(parent, []).append(child)
    found, todo = {}, [pid]
    while todo:
        p = todo.pop()
        started = start_time(p)
        if started is not None:
            found[p] = started
        todo += children.get(p, [])
    return found


def alive(found: dict[int, int]) -> list[int]:
    """The processes of `found` still running (the same pid and start time: not recycled)."""
    return [pid for pid, started in found.items() if running(pid, started)]


class Stack:
    def __init__(self, state_dir: Path, port: int):
        self.state_dir, self.port = state_dir, port
        self.url = f"http://127.0.0.1:{port}/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"
        self.proc: subprocess.Popen | None = None
        self.log = state_dir.parent / "stack.log"
        self.runs = 0

    def start(self, timeout: float = 90.0, schedule_seconds: float | None = 2.0) -> "Stack":
        """schedule_seconds: the scheduled pass's period (None: `make run`'s, a minute)."""
        env = {**os.environ, "VAMP_PORT": str(self.port), "VAMP_STATE_DIR": str(self.state_dir),
               "VAMP_API_TOKEN": TOKEN}
        for key in ("VAMP_AWS_ENDPOINT", "AWS_ENDPOINT_URL", "VAMP_ETCD_ENDPOINT", "VAMP_RELEASE_STATE_MACHINE",
                    "VAMP_VIRTUAL_HOSTS_PORT", "MOTO_PORT", "VAMP_LOCAL_WORK_DIR", "VAMP_LOCAL_SCHEDULE_SECONDS"):
            env.pop(key, None)
        if schedule_seconds is not None:
            env["VAMP_LOCAL_SCHEDULE_SECONDS"] = str(schedule_seconds)
        self.runs += 1
        self.log_file = self.state_dir.parent / f"stack-{self.runs}.log"
        with open(self.log_file, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "local", "-v", "run"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.ready() or self.proc.poll() is not None, timeout, interval=0.2, what="the stack's API")
        assert self.proc.poll() is None, self.log_file.read_text()[-3000:]
        wait_for(lambda: "Ctrl-C stops everything" in self.text(), 30, interval=0.2, what="the agent")
        return self

    def ready(self) -> bool:
        try:
            return self.session.get(self.url + "/info", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def text(self) -> str:
        return self.log_file.read_text(errors="replace")

    def passes(self) -> int:
        return max([int(n) for n in PASS_LINE.findall(self.text())] or [0])

    def call(self, method: str, path: str, expect=(200, 201, 202, 204), **kw):
        r = self.session.request(method, self.url + path, timeout=30, **kw)
        assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


def blueprint(version: str, gateway_port: int | None = None) -> dict:
    # A compound command: the service is the shell's child, not the shell (what a parent-death
    # signal alone would leave behind).
    command = f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} {shlex.quote(str(SERVICE))}"
    doc = {"name": "shop", "clusters": {"web": {"services": [{"breed": {
        "name": f"web:{version}", "deployable": {"type": "command", "definition": command},
        "ports": {"port": "8080/http"}, "environment_variables": {"VERSION": version}}}]}}}
    if gateway_port:
        doc["gateways"] = {f"{gateway_port}/http": "web/port"}
    return doc


def answer(port: int) -> str | None:
    try:
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=2, headers={"Connection": "close"})
        return r.text.strip() if r.status_code == 200 else None
    except requests.RequestException:
        return None


GATEWAY = "/gateways/" + urllib.parse.quote("shop/web/port", safe="")


def set_weights(stack: Stack, weights: dict[str, str]) -> None:
    doc = stack.call("GET", GATEWAY)
    for name, route in doc["routes"].items():  # route names end in the service's, e.g. shop/web/web:1/port
        route["weight"] = next(w for service, w in weights.items() if f"/{service}/" in name)
    stack.call("PUT", GATEWAY, json=doc)


def test_killed_stack_leaves_nothing_and_restarts_with_every_write(tmp_path):
    state_dir = tmp_path / "state"
    gateway_port = free_port_in(20000, 24999)
    stack = Stack(state_dir, free_port()).start()
    try:
        # Writes: a deployment of two versions behind a gateway, artifacts, a release left running.
        stack.call("POST", "/deployments", json=blueprint("1", gateway_port))
        wait_for(lambda: answer(gateway_port) == "ok 1", 60, interval=0.2, what="version 1 through the gateway")
        stack.call("PUT", "/deployments/shop", json=blueprint("2"))
        wait_for(lambda: len(stack.call("GET", GATEWAY)["routes"]) == 2, 60, interval=0.2, what="two routes")
        for i in range(30):
            stack.call("POST", "/breeds", json={"name": f"b{i}", "deployable": f"magneticio/b:{i}"})
        stack.call("PUT", "/breeds/b0", json={"name": "b0", "deployable": "magneticio/b:changed"})
        stack.call("DELETE", "/breeds/b1")
        stack.call("POST", "/releases", expect=(202,), json={
            "name": "r1", "gateway": "shop/web/port", "stable": "shop/web/web:1/port",
            "canary": "shop/web/web:2/port",
            "policy": {"steps": ["10%", "50%"], "interval": "600s", "failures": 2, "minimum_requests": 1,
                       "metrics": {"success_rate": {"minimum": "50%"}}}})
        wait_for(lambda: stack.call("GET", "/releases/r1")["weight"] == 10, 30, interval=0.2, what="the canary at its first step")

        processes = descendants(stack.proc.pid)
        names = {Path(p).stem for d in ("run", "services/run") for p in (state_dir / d).glob("*.json")}
        assert {"etcd", "agent"} <= names and any(n.startswith("default-shop") for n in names), names
        assert len(processes) >= 8, processes  # stack, guard, etcd, agent, HAProxy x2, 2 x (sh, service)

        # An agent killed is restarted by the stack.
        agent = json.loads((state_dir / "run" / "agent.json").read_text())["pid"]
        os.kill(agent, signal.SIGKILL)
        wait_for(lambda: "gateway agent restarted" in stack.text(), 30, interval=0.2, what="the agent restarted")
        wait_for(lambda: answer(gateway_port) == "ok 1", 30, interval=0.2, what="version 1 through the gateway again")
        processes.update(descendants(stack.proc.pid))

        stack.proc.send_signal(signal.SIGKILL)
        stack.proc.wait(10)
        wait_for(lambda: not alive(processes), 20, interval=0.2, what="nothing of the killed stack left")

        # Started again on the same state dir, with `make run`'s period (a minute): what routes the
        # service again is the run at start and its follow-ups, not the period.
        stack.start(schedule_seconds=None)
        assert "left by a crashed run" not in stack.text()  # the guard had stopped them all
        assert stack.call("GET", "/breeds/b0")["deployable"]["definition"] == "magneticio/b:changed"
        assert stack.session.get(stack.url + "/breeds/b1").status_code == 404
        for i in range(2, 30):
            assert stack.session.get(stack.url + f"/breeds/b{i}").status_code == 200
        # Ended at start, done once the restarted agent applied the rollback (docs/decisions/0018).
        ended = wait_for(lambda: (lambda r: r if r["phase"] == "rolled_back" else None)(stack.call("GET", "/releases/r1")), 60, interval=0.2, what="the interrupted release rolled back and applied")
        assert "local stack stopped while it ran" in ended["reason"], ended

        # Routed again within a few passes: run 1 redeploys, run 2 (a second later) routes the
        # instance once healthy; a slow start (a busy machine) costs a run or two more. Before, the
        # first run came after the period (here a minute) and routing took two: past the wait below.
        wait_for(lambda: answer(gateway_port) == "ok 1", 50, interval=0.2, what="version 1 through the gateway after the restart")
        assert 1 <= stack.passes() <= 5, stack.text()[-3000:]
        # The rollback reached HAProxy: no request goes to the canary (it had 10%).
        assert {answer(gateway_port) for _ in range(40)} == {"ok 1"}

        # A gateway PUT reaches HAProxy.
        set_weights(stack, {"web:1": "0%", "web:2": "100%"})
        wait_for(lambda: answer(gateway_port) == "ok 2", 30, interval=0.2, what="version 2 through the gateway")

        # A second stack on the same state dir is refused, and leaves the first alone.
        second = subprocess.run([sys.executable, "-m", "local", "run"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, env={**os.environ, "VAMP_STATE_DIR": str(state_dir),
                                                 "VAMP_PORT": str(free_port()), "VAMP_API_TOKEN": TOKEN})
        assert second.returncode != 0 and "another local stack runs on" in second.stderr, second.stderr
        assert answer(gateway_port) == "ok 2"

        # SIGINT: it exits, and leaves nothing behind.
        processes = descendants(stack.proc.pid)
        stack.proc.send_signal(signal.SIGINT)
        assert stack.proc.wait(60) == 0, stack.text()[-3000:]
        wait_for(lambda: not alive(processes), 20, interval=0.2, what="nothing of the stopped stack left")
        assert not list((state_dir / "run").glob("*.json")) and not list((state_dir / "services" / "run").glob("*.json"))
    finally:
        if stack.proc and stack.proc.poll() is None:
            stack.proc.kill()


def test_leftovers_of_a_crash_are_stopped_at_start(tmp_path):
    """Records of a crashed run whose processes still run (the guard could not stop them): the
    next start stops them, and leaves a recycled pid (a record naming another process) alone."""
    from chalicelib.drivers.processes import ProcessRecord

    state_dir = tmp_path / "state"
    run_dir = state_dir / "run"
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "301"], start_new_session=True)
    try:
        ProcessRecord.of(leftover.pid, "etcd").write(run_dir)
        recycled = ProcessRecord.of(bystander.pid, "agent")
        recycled.started -= 1  # the pid now names a process started at another time
        recycled.write(run_dir)
        stack = Stack(state_dir, free_port()).start()
        try:
            assert leftover.wait(10) is not None
            assert bystander.poll() is None
            assert "stopped etcd" in stack.text()
        finally:
            stack.proc.send_signal(signal.SIGINT)
            assert stack.proc.wait(60) == 0
    finally:
        for p in (leftover, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()
