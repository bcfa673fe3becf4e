"""What the control plane costs while nothing happens: the scheduled pass (EventBridge, every
minute) over a settled control plane — namespaces whose deployments all run, whose gateways etcd
already holds — counted call by call on moto and real etcd, and priced as an idle month on AWS.

Counted per pass: DynamoDB requests and the read units they would bill (bench.releases'
meter), etcd requests, driver calls, and the pass's run time (in this process: a proxy for the
Lambda's billed duration). The month: 43,800 passes (60 x 730 h), Lambda requests and GB-s at
the dev stage's memory, DynamoDB reads, CloudWatch Logs ingestion of Lambda's own START/END/REPORT
lines (about 300 bytes a pass; the pass logs nothing more when nothing changed). The pass runs as
on AWS: it reads etcd through the publisher function (docs/decisions/0036, moto's Lambda delivering
to app.py's gateway_publish here), whose invocations are counted and priced at its own memory and
measured run time. Not counted:
API Gateway (no requests while idle), Step Functions (no execution runs), the EKS control plane
and the agents' nodes (the cluster's bill, not the control plane's), OpenSearch.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ROOT, local_aws

PASSES_A_MONTH = 60 * 730
LOG_BYTES_A_PASS = 300  # START, END and REPORT lines of one invocation
PRICES = {
    "request": 0.20 / 1_000_000,  # Lambda, per invocation
    "gb_second": 0.0000166667,  # Lambda, x86
    "rru": 0.25 / 1_000_000,  # DynamoDB on-demand read request unit
    "wru": 1.25 / 1_000_000,
    "log_gb": 0.50,  # CloudWatch Logs ingestion, per GB
}


def _settle(namespaces: int, deployments: int, gateways: int) -> dict[str, dict[str, str]]:
    """`namespaces` namespaces with `deployments` running deployments and `gateways` gateways
    each, the gateways published to etcd: what the pass finds when nothing happens."""
    from chalice.test import Client

    import app
    from bench.deployments import _seed
    from chalicelib.store import namespaces as registry
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.store.tokens import DynamoDBTokenStore

    token, _ = DynamoDBTokenStore().create(f"idle-{uuid.uuid4().hex[:6]}", role="admin", namespaces=["*"])
    digests = {}
    with Client(app.app, stage_name="local") as client:
        for n in range(namespaces):
            ns = f"idle{n}"
            digests[ns] = _seed(DynamoDBArtifactStore(), ns, deployments)
            registry.register("deployments", ns)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            for g in range(gateways):
                body = {"name": f"g{g}", "port": f"{21000 + n * 100 + g}/http",
                        "routes": {"a/b/c": {"weight": "100%"}}}
                r = client.http.post(f"/{ns}/api/v1/gateways", headers=headers, body=json.dumps(body))
                assert r.status_code in (201, 202), r.body
    return digests


class _Settled:
    """A driver whose services all run at the stored digests (the pass must find nothing to do)."""

    def __init__(self, digests: dict[str, str]):
        self.digests, self.calls = digests, 0

    def running(self, namespace):
        self.calls += 1
        return dict(self.digests)

    def status(self, namespace, keys):
        raise AssertionError("a settled deployment needs no status call")


def idle_pass(namespaces: int = 3, deployments: int = 10, gateways: int = 5, passes: int = 20) -> dict:
    from bench.releases import DynamoMeter, _counting
    from chalicelib import jobs
    from chalicelib.deployments import sync
    from chalicelib.settings import settings
    from chalicelib.store import table
    from local import stepfunctions
    from tests.agent.helpers import EtcdServer

    with tempfile.TemporaryDirectory() as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd").start()
        os.environ["VAMP_ETCD_ENDPOINT"] = etcd.endpoint
        os.environ["VAMP_GATEWAY_SIGNING_KEY"] = uuid.uuid4().hex * 2
        # As on AWS: the pass outside the VPC, etcd through the publisher function (0036).
        stepfunctions.install()
        stepfunctions.configure(os.environ["VAMP_AWS_ENDPOINT"])
        os.environ["VAMP_GATEWAY_PUBLISHER_FUNCTION"] = "vamp-bench-gateway_publish"
        settings.cache_clear()
        publisher_walls: list[float] = []

        def timed(name, event, proceed):
            t = time.perf_counter()
            try:
                return proceed(event)
            finally:
                if name == "gateway_publish":
                    publisher_walls.append(time.perf_counter() - t)

        stepfunctions.interceptors.append(timed)
        try:
            digests = _settle(namespaces, deployments, gateways)
            drivers = {ns: _Settled(d) for ns, d in digests.items()}
            original = sync.driver_for
            sync.driver_for = lambda ns: drivers[ns]
            meter = DynamoMeter()
            unwatch = [table.watch("provide-client-params.dynamodb", DynamoMeter.keep_params),
                       table.watch("after-call.dynamodb", meter)]
            etcd_calls = _count_etcd()
            walls = []
            try:
                jobs.every_minute()  # warm: imports, clients
                meter.calls = meter.rru = meter.wru = 0
                etcd_calls.clear()
                publisher_walls.clear()
                for _ in range(passes):
                    _counting.on = True
                    t = time.perf_counter()
                    out = jobs.every_minute()
                    walls.append(time.perf_counter() - t)
                    _counting.on = False
                    assert all(p["changed"] == 0 for p in out["deployments"].values()), out
                    assert not any(str(v).startswith("error") for v in out["gateways"].values()), out
            finally:
                sync.driver_for = original
                for u in unwatch:
                    u()
                etcd_calls.stop()
        finally:
            stepfunctions.interceptors.remove(timed)
            os.environ.pop("VAMP_GATEWAY_PUBLISHER_FUNCTION", None)
            settings.cache_clear()
            etcd.stop()
    return {"namespaces": namespaces, "deployments": deployments, "gateways": gateways, "passes": passes,
            "dynamodb": meter.calls / passes, "rru": meter.rru / passes, "wru": meter.wru / passes,
            "etcd": len(etcd_calls) / passes, "driver": sum(d.calls for d in drivers.values()) / (passes + 1),
            "wall_s": sorted(walls)[len(walls) // 2], "publisher": len(publisher_walls) / passes,
            "publisher_wall_s": sorted(publisher_walls)[len(publisher_walls) // 2] if publisher_walls else 0.0}


class _count_etcd(list):
    """etcd requests the publisher makes (etcd3gw speaks HTTP through requests)."""

    def __init__(self):
        super().__init__()
        import requests

        self._original = requests.Session.request
        calls = self

        def counted(session, method, url, *a, **kw):
            if "/v3/" in str(url):
                calls.append(url)
            return calls._original(session, method, url, *a, **kw)

        requests.Session.request = counted

    def stop(self):
        import requests

        requests.Session.request = self._original


def _month(f: dict, memory_mb: int, publisher_mb: int) -> dict[str, float]:
    # The pass's own time includes its wait for the publisher: billed once in each function.
    billed_s = max(0.001, round(f["wall_s"], 3))
    publisher_s = max(0.001, round(f["publisher_wall_s"], 3))
    return {
        "Lambda requests": PASSES_A_MONTH * (1 + f["publisher"]) * PRICES["request"],
        "Lambda GB-s": PASSES_A_MONTH * (billed_s * memory_mb + f["publisher"] * publisher_s * publisher_mb) / 1024
        * PRICES["gb_second"],
        "DynamoDB reads": PASSES_A_MONTH * f["rru"] * PRICES["rru"],
        "DynamoDB writes": PASSES_A_MONTH * f["wru"] * PRICES["wru"],
        "CloudWatch Logs": PASSES_A_MONTH * (1 + f["publisher"]) * LOG_BYTES_A_PASS / 1e9 * PRICES["log_gb"],
    }


def main() -> None:
    dev = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]
    memory_mb = dev.get("lambda_memory_size", 128)
    publisher_mb = dev.get("lambda_functions", {}).get("gateway_publish", {}).get("lambda_memory_size", memory_mb)
    print("\n== idle: the scheduled pass with nothing to do (AWS public prices, before the free tier) ==")
    totals = {}
    for deployments in (0, 10, 40):
        with local_aws(f"vamp-bench-idle-{deployments}"):
            f = idle_pass(deployments=deployments)
        month = _month(f, memory_mb, publisher_mb)
        totals[deployments] = sum(month.values())
        print(f"{f['namespaces']} namespaces x {f['deployments']} running deployments (2 clusters x 2 services) and "
              f"{f['gateways']} published gateways, {f['passes']} passes: per pass {f['dynamodb']:.1f} DynamoDB "
              f"requests ({f['rru']:.1f} RRU, {f['wru']:.1f} WRU), {f['etcd']:.1f} etcd requests, {f['driver']:.1f} "
              f"driver calls, {f['wall_s'] * 1000:.1f} ms run time (median, here); {f['publisher']:.1f} publisher "
              f"invocations ({f['publisher_wall_s'] * 1000:.1f} ms)")
        print(f"  idle month ({PASSES_A_MONTH:,} passes at {memory_mb} MB, the publisher at {publisher_mb} MB): "
              + ", ".join(f"{k} ${v:.4f}" for k, v in month.items()) + f"; total ${totals[deployments]:.3f}")
    per_deployment = (totals[40] - totals[10]) / (3 * 30)
    print(f"each running deployment adds ${per_deployment:.4f} a month (the pass reads each one's summary every "
          f"minute, docs/decisions/0034; "
          f"1,000 deployments: ${totals[0] + 1000 * per_deployment:.2f} a month)")
    print("  (Lambda's free tier, 1M requests and 400,000 GB-s a month, covers the pass's Lambda part; "
          "API Gateway and Step Functions cost nothing while idle)")


if __name__ == "__main__":
    main()
