"""The local stack killed and started again (docs/decisions/0020): `python -m local run` with
`make run`'s settings, a service behind a gateway and writes through the API, then SIGKILL.
Prints how long its processes outlive it, what the restart lost, how long until the service
answers through its gateway again (was 172 s: two scheduled periods) and how long a Ctrl-C takes
(was 90-120 s with 50,000 items to save)."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import ROOT

TOKEN = "bench-local-restart-token-0123456789"
WRITES = 200


def _tree(pid: int) -> set[int]:
    rows = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    children: dict[int, list[int]] = {}
    for row in filter(str.strip, rows):
        child, parent = map(int, row.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo += children.get(p, [])
    return found


def _alive(pids: set[int]) -> set[int]:
    from chalicelib.drivers.processes import running, start_time

    return {p for p in pids if running(p, start_time(p))}


def _until(predicate, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def main() -> None:
    from local.stack import free_port, free_port_in

    print("\n== local stack: killed (SIGKILL) and started again (make run's settings) ==")
    work = Path(tempfile.mkdtemp(prefix="vamp-bench-restart-"))
    api_port, gateway_port = free_port(), free_port_in(20000, 24999)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAMP_", "MOTO_")) and k != "AWS_ENDPOINT_URL"}
    env.update(VAMP_PORT=str(api_port), VAMP_STATE_DIR=str(work / "state"), VAMP_API_TOKEN=TOKEN)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {TOKEN}"
    url = f"http://127.0.0.1:{api_port}/api/v1"

    def start() -> subprocess.Popen:
        log = open(work / "stack.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "local", "run"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        _until(lambda: "Ctrl-C stops everything" in (work / "stack.log").read_text(errors="replace"), 120)
        return proc

    proc = start()
    try:
        command = f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} examples/canary/service.py"
        api.post(url + "/deployments", json={"name": "shop", "gateways": {f"{gateway_port}/http": "web/port"},
                                            "clusters": {"web": {"services": [{"breed": {
                                                "name": "web:1", "deployable": {"type": "command", "definition": command},
                                                "ports": {"port": "8080/http"}}}]}}}, timeout=30).raise_for_status()
        first = _until(lambda: _answers(gateway_port), 120)
        def breeds() -> int:
            return int(api.get(url + "/breeds?per_page=1", timeout=30).headers.get("X-Total-Count", 0))

        before = breeds()  # the deployment's own breed
        acknowledged = 0
        for i in range(WRITES):
            r = api.post(url + "/breeds", json={"name": f"b{i}", "deployable": f"x/b:{i}"}, timeout=30)
            acknowledged += r.status_code == 201
        tree = _tree(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        orphans = _until(lambda: not _alive(tree), 30)
        spawned = time.monotonic()
        (work / "stack.log").write_text("")
        proc = start()
        ready = time.monotonic() - spawned
        routed = _until(lambda: _answers(gateway_port), 180)
        routed_after = None if routed is None else time.monotonic() - spawned
        stored = breeds() - before
        tree = _tree(proc.pid)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        stop = time.monotonic() - stopping
        left = _until(lambda: not _alive(tree), 30)
        print(f"service routed {first:.1f} s after its POST" if first else "service NOT routed after its POST")
        print(f"processes of the killed stack gone {orphans:.2f} s after the SIGKILL ({len(tree)} processes)"
              if orphans is not None else "processes of the killed stack LEFT RUNNING")
        print(f"writes acknowledged before the kill {acknowledged}, after the restart {stored}: "
              f"{acknowledged - stored} lost")
        print(f"restart: API up {ready:.1f} s after the start, service routed through its gateway "
              + (f"{routed_after:.1f} s after the start (was 172 s)" if routed_after else "NOT within 180 s"))
        print(f"Ctrl-C: the stack exited in {stop:.1f} s (was 90-120 s), "
              + ("nothing left behind" if left is not None else "processes LEFT"))
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
