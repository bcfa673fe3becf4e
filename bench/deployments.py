"""Deployments: (a) POST of a blueprint to the first successful request through HAProxy (local
driver, real etcd + agent + HAProxy, moto); (b) one synchronisation pass over N unchanged
deployments: wall time and DynamoDB calls, N = 100 and 1,000, and their ratio (goal <= 12)."""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import local_aws

SERVER = (
    "python3 -c \"import http.server,os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "  def do_GET(self):\n"
    "    self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
    "  def log_message(self,*a): pass\n"
    "http.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\""
)


def _request(port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/", headers={"Connection": "close"})
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def bench_post_to_traffic(rounds: int = 3) -> dict:
    import os

    from chalice.test import Client

    from agent.app import Agent
    from agent.settings import AgentSettings
    from chalicelib.deployments.sync import sync_namespace
    from chalicelib.drivers.local import LocalDriver
    from chalicelib.settings import settings
    from tests.agent.helpers import EtcdServer, free_port

    with tempfile.TemporaryDirectory() as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd").start()
        os.environ["VAMP_ETCD_ENDPOINT"] = etcd.endpoint
        os.environ["VAMP_VIRTUAL_HOSTS_PORT"] = str(free_port())
        os.environ["VAMP_GATEWAY_SIGNING_KEY"] = key = uuid.uuid4().hex * 2  # signed configs only (0023)
        settings.cache_clear()
        ns = f"b{uuid.uuid4().hex[:8]}"
        agent = Agent(AgentSettings(etcd_endpoint=etcd.endpoint, namespace=ns, work_dir=Path(tmp) / "agent",
                                    listen=f"127.0.0.1:{free_port()}", aggregate_interval=3600.0, signing_key=key))
        agent.start()
        import app
        from chalicelib.store.tokens import DynamoDBTokenStore

        token, _ = DynamoDBTokenStore().create(f"bench-{ns}", role="admin", namespaces=["*"])
        times, syncs = [], []
        try:
            with Client(app.app, stage_name="local") as client:
                for i in range(rounds):
                    port = free_port()
                    doc = {"name": f"web{i}", "gateways": {f"{port}/http": "web/port"},
                           "clusters": {"web": {"services": [{"breed": {
                               "name": f"web{i}:1", "deployable": {"type": "command", "definition": SERVER},
                               "ports": {"port": "8080/http"}}}]}}}
                    t = time.monotonic()
                    r = client.http.post(f"/{ns}/api/v1/deployments", body=json.dumps(doc), headers={
                        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                    assert r.status_code == 202, r.body
                    passes = 0
                    deadline = t + 30
                    while not _request(port):
                        if time.monotonic() > deadline:
                            raise RuntimeError("no traffic within 30 s")
                        sync_namespace(ns)  # the local stack's scheduler would run these
                        passes += 1
                        time.sleep(0.05)
                    times.append(time.monotonic() - t)
                    syncs.append(passes)
        finally:
            LocalDriver().undeploy_namespace(ns)
            agent.stop()
            etcd.stop()
            os.environ.pop("VAMP_ETCD_ENDPOINT", None)
            os.environ.pop("VAMP_GATEWAY_SIGNING_KEY", None)
            settings.cache_clear()
    return {"median_s": statistics.median(times), "max_s": max(times), "extra_sync_passes": syncs}


class _Running:
    """A driver that runs everything already (the pass must find nothing to do)."""

    name = "bench"

    def __init__(self, digests: dict[str, str]):
        self.digests, self.status_calls = digests, 0

    def running(self, namespace):
        return dict(self.digests)

    def status(self, namespace, keys):
        self.status_calls += 1
        raise AssertionError("an unchanged deployment needs no status call")


def _seed(store, ns: str, n: int) -> dict[str, str]:
    """n deployments of 2 clusters x 2 services, all done, as synchronisation leaves them."""
    from chalicelib.deployments.merge import merge
    from chalicelib.deployments.model import dump
    from chalicelib.drivers.base import service_key
    from chalicelib.dsl import parse
    from chalicelib.store.artifact_store import Write
    from chalicelib.store.dynamodb_artifacts import MAX_WRITES

    digests = {}
    writes = []
    for i in range(n):
        name = f"d{i:05d}"
        bp = parse("blueprints", {"name": name, "clusters": {c: {"services": [
            {"breed": {"name": f"{c}:{v}", "deployable": "img", "ports": {"port": "8080"}}} for v in ("1", "2")]}
            for c in ("a", "b")}})
        dep = merge(None, name, bp, None, "2026-01-01T00:00:00Z")[0]
        for c, _, s in dep.services():
            s.status.phase.name = "done"
            s.digest = f"{i}-{c}-{s.name}"
            digests[service_key(name, c, s.name)] = s.digest
        writes.append(Write("deployments", name, dump(dep), expected_version=None))
    chunk = MAX_WRITES // 2  # each deployment write carries its summary's (here: its removal)
    for j in range(0, len(writes), chunk):
        store.apply(ns, writes[j:j + chunk])
    return digests


def bench_sync_pass(sizes=(100, 1000)) -> dict:
    from chalicelib.deployments.sync import sync_namespace
    from chalicelib.store import table
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    out = {}
    for n in sizes:
        ns = f"s{n}"
        digests = _seed(DynamoDBArtifactStore(), ns, n)
        calls = []
        unwatch = table.watch("before-call.dynamodb", lambda model, **kw: calls.append(model.name))
        driver = _Running(digests)
        walls = []
        try:
            for _ in range(3):  # best of 3: the machine is shared, moto runs in this process
                calls.clear()
                t = time.monotonic()
                result = sync_namespace(ns, store=DynamoDBArtifactStore(), driver=driver, publish=lambda *a: None)
                walls.append(time.monotonic() - t)
                assert result.deployments == n and result.changed == 0 and not result.errors, result
        finally:
            unwatch()
        out[n] = {"wall_ms": min(walls) * 1000, "dynamodb_calls": len(calls), "calls": sorted(set(calls))}
    return out


def main() -> None:
    print("== deployments ==")
    with local_aws("vamp-bench-deployments"):
        sync = bench_sync_pass()
        small, big = sync[100], sync[1000]
        print(f"sync pass, 100 unchanged deployments:   {small['wall_ms']:8.1f} ms, "
              f"{small['dynamodb_calls']} DynamoDB calls ({', '.join(small['calls'])})")
        print(f"sync pass, 1,000 unchanged deployments: {big['wall_ms']:8.1f} ms, "
              f"{big['dynamodb_calls']} DynamoDB calls ({', '.join(big['calls'])})")
        print(f"ratio 1,000 / 100: wall {big['wall_ms'] / small['wall_ms']:.1f}x, "
              f"DynamoDB calls {big['dynamodb_calls'] / small['dynamodb_calls']:.1f}x  (goal <= 12)")
        post = bench_post_to_traffic()
        print(f"POST blueprint -> first request through HAProxy (local driver): median {post['median_s']:.2f} s, "
              f"max {post['max_s']:.2f} s (sync passes after the POST's own: {post['extra_sync_passes']})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
