"""The whole flow on the local driver: API -> DynamoDB (moto) -> sync -> local processes, and
API -> etcd -> agent -> a real HAProxy -> those processes."""
from __future__ import annotations

import os
import signal
import urllib.parse

from chalicelib.contract.envelope import checksum
from chalicelib.deployments.sync import sync_namespace
from chalicelib.drivers.local import LocalDriver
from tests.agent.helpers import free_port, wait_for
from tests.drivers.helpers import SERVER
from tests.gateways.helpers import request, tally

N = 400
TOLERANCE = 60  # 50/50 over 400 requests: sd = 10


def blueprint(name: str, version: str, port: int | None = None) -> dict:
    doc = {"name": name, "clusters": {"web": {"services": [{"breed": {
        "name": f"web:{version}", "deployable": {"type": "command", "definition": SERVER},
        "ports": {"port": "8080/http"}, "environment_variables": {"VERSION": version}}}]}}}
    if port:
        doc["gateways"] = {f"{port}/http": "web/port"}
    return doc


def settle(api, ns: str, name: str, timeout: float = 20.0) -> dict | None:
    """Run synchronisation passes until every service is done (or the deployment is gone)."""
    def done():
        sync_namespace(ns)
        r = api.get(f"/{ns}/api/v1/deployments/{name}")
        if r.status_code == 404:
            return {"gone": True}
        services = [s for c in r.json["clusters"].values() for s in c["services"]]
        return r.json if all(s["status"]["phase"]["name"] == "done" for s in services) else None

    found = wait_for(done, timeout, interval=0.1, what=f"deployment {name} done")
    return None if found.get("gone") else found


def applied(api, agent, ns: str) -> None:
    r = api.get(f"/{ns}/api/v1/vga/haproxy/2.6/configuration")
    assert r.status_code == 200, r.body
    digest = checksum(r.json["configuration"])
    wait_for(lambda: agent.healthz()[1]["config_checksum"] == digest, 20, what="agent serving the configuration")


def test_deploy_canary_slice_undeploy_through_haproxy(gw_api, namespace, start_agent):
    ns, api = namespace, gw_api
    agent = start_agent(namespace=ns)
    port = free_port()
    driver = LocalDriver()

    r = api.post(f"/{ns}/api/v1/deployments", blueprint("shop", "1", port))
    assert r.status_code == 202, r.body
    dep = settle(api, ns, "shop")
    (svc,) = dep["clusters"]["web"]["services"]
    assert svc["status"]["intention"] == "deployment" and len(svc["instances"]) == 1
    applied(api, agent, ns)
    wait_for(lambda: _try(port) == (200, "1"), 10, what="v1 through HAProxy")
    events = api.get(f"/{ns}/api/v1/events?tag=synchronization:deployed&tag=deployments:shop").json
    assert len(events) == 1 and "services:web:1" in events[0]["tags"]

    # version 2 enters at 0%
    r = api.put(f"/{ns}/api/v1/deployments/shop", blueprint("shop", "2"))
    assert r.status_code == 202, r.body
    dep = settle(api, ns, "shop")
    routes = dep["clusters"]["web"]["gateways"]["port"]["routes"]
    assert {k: v["weight"] for k, v in routes.items()} == {"web:1": "100%", "web:2": "0%"}
    applied(api, agent, ns)
    assert tally(port, 100) == {"1": 100}

    # 50/50 through the gateway API
    gw = "/" + ns + "/api/v1/gateways/" + urllib.parse.quote("shop/web/port", safe="")
    doc = api.get(gw).json
    for route in doc["routes"].values():
        route["weight"] = "50%"
    assert api.put(gw, doc).status_code == 202
    applied(api, agent, ns)
    counts = tally(port, N)
    assert set(counts) == {"1", "2"} and abs(counts["1"] - N // 2) <= TOLERANCE, counts
    shown = api.get(f"/{ns}/api/v1/deployments/shop").json  # the deployment shows the gateway's weights
    assert {v["weight"] for v in shown["clusters"]["web"]["gateways"]["port"]["routes"].values()} == {"50%"}

    # slice version 1: all traffic on version 2, its processes gone
    v1 = driver.pids(ns, "shop/web/web:1")
    assert api.delete(f"/{ns}/api/v1/deployments/shop", blueprint("shop", "1")).status_code == 202
    dep = settle(api, ns, "shop")
    assert [s["breed"]["name"] for s in dep["clusters"]["web"]["services"]] == ["web:2"]
    applied(api, agent, ns)
    assert tally(port, 100) == {"2": 100}
    for pid in v1:
        wait_for(lambda: not _alive(pid), 5, what="v1 process gone")

    # a killed process comes back, on the same port
    (pid,) = driver.pids(ns, "shop/web/web:2")
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: driver.pids(ns, "shop/web/web:2") not in ([], [pid]), 10, what="restart")
    wait_for(lambda: _try(port) == (200, "2"), 10, what="v2 answering again")

    # undeploy: processes gone, gateways removed
    v2 = driver.pids(ns, "shop/web/web:2")
    assert api.delete(f"/{ns}/api/v1/deployments/shop").status_code == 202
    assert settle(api, ns, "shop") is None
    assert driver.running(ns) == {}
    for pid in v2:
        wait_for(lambda: not _alive(pid), 5, what="v2 process gone")
    assert api.get(gw).status_code == 404
    applied(api, agent, ns)
    wait_for(lambda: _refused(port), 10, what="the gateway port closed")
    assert len(api.get(f"/{ns}/api/v1/events?tag=synchronization:undeployed").json) == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _refused(port: int) -> bool:
    try:
        request(port, timeout=1)
        return False
    except OSError:
        return True


def _try(port):
    try:
        return request(port, timeout=2)
    except OSError as e:
        return repr(e)
