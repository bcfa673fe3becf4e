"""Gateway benchmarks: `python -m bench gateways`.

(a) propagation: a weight change through the API (chalice's test client on moto) until the new
    split is live in HAProxy (API -> DynamoDB -> render -> etcd -> agent -> haproxy -c ->
    reload), p50 and p99 over 20 changes; goal p99 < 1 s (Vamp's polling needed 5 to 11 s).
    "Live" is probed through HAProxy: the gateway flips 100/0 <-> 0/100 between two backends
    that answer their own names, and the change is live at the first answer of the other one.
(c) render and validate (`haproxy -c`) 1,000 gateways of 5 routes, and the ratio to 100
    gateways; goal < 2 s and ratio <= 12.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentiles, verdict  # noqa: E402

CHANGES = 20
GOAL_PROPAGATION_P99 = 1.0
GOAL_RENDER_S = 2.0
GOAL_RATIO = 12


# -- (a) propagation ---------------------------------------------------------------------------
def bench_propagation(changes: int = CHANGES) -> list[float]:
    import logging

    from chalice.test import Client

    from agent.app import Agent
    from agent.settings import AgentSettings
    from bench.common import local_aws
    from chalicelib.settings import settings
    from local.etcd import LocalEtcd
    from local.stack import free_port
    from tests.agent.helpers import Backend, get, wait_for

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, local_aws("vamp-bench-gateways") as (_, token):
        work = Path(tmp)
        etcd = LocalEtcd(work / "etcd", free_port(), free_port(), work / "etcd.log").start()
        a, b = Backend("A"), Backend("B")
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        os.environ.update(VAMP_ETCD_ENDPOINT=etcd.endpoint, VAMP_VIRTUAL_HOSTS_PORT="0")
        settings.cache_clear()
        agent = Agent(AgentSettings(etcd_endpoint=etcd.endpoint, namespace=namespace, work_dir=work / "agent",
                                    listen=f"127.0.0.1:{free_port()}", aggregate_interval=3600.0, backoff_max=1.0,
                                    signing_key_file=etcd.signing_key_file))
        agent.start()
        try:
            import app

            port = free_port()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

            def put(to_a: bool) -> None:
                import json

                body = {"name": "flip", "port": f"{port}/http", "routes": {
                    f"[127.0.0.1:{a.port}]": {"weight": "100%" if to_a else "0%"},
                    f"[127.0.0.1:{b.port}]": {"weight": "0%" if to_a else "100%"}}}
                r = client.http.put(f"/{namespace}/api/v1/gateways/flip", headers=headers, body=json.dumps(body).encode())
                assert r.status_code == 202, r.body

            def answer() -> str | None:
                try:
                    return get(port, timeout=1)
                except Exception:
                    return None

            with Client(app.app, stage_name="local") as client:
                put(True)
                wait_for(lambda: answer() == "A", 30, what="the first configuration live")
                for i in range(changes):
                    to_a = i % 2 == 1
                    expected = "A" if to_a else "B"
                    started = time.perf_counter()
                    put(to_a)
                    wait_for(lambda: answer() == expected, 10, interval=0.005, what=f"change {i} live")
                    samples.append(time.perf_counter() - started)
        finally:
            agent.stop()
            etcd.stop()
            a.stop()
            b.stop()
            for key in ("VAMP_ETCD_ENDPOINT", "VAMP_VIRTUAL_HOSTS_PORT", "VAMP_GATEWAY_SIGNING_KEY_FILE"):
                os.environ.pop(key, None)
            settings.cache_clear()
    return samples


# -- (c) render and validate -----------------------------------------------------------------------
def _gateways(n: int) -> list[dict]:
    docs = []
    for i in range(n):
        docs.append({"name": f"shop{i}/web", "kind": "gateways", "port": f"{20000 + i}/http",
                     "virtual_hosts": [f"shop{i}.example.com"], "routes": {
                         f"[10.0.{i // 250}.{i % 250 + 1}:8080]": {"weight": "40%"},
                         f"[10.1.{i // 250}.{i % 250 + 1}:8080]": {"weight": "30%"},
                         f"[10.2.{i // 250}.{i % 250 + 1}:8080]": {"weight": "20%",
                                                                  "rewrites": ["/v2/%[path] if has header X-V2"]},
                         f"[10.3.{i // 250}.{i % 250 + 1}:8080]": {"condition": "user-agent == Firefox and has cookie beta",
                                                                  "condition_strength": "50%"},
                         f"shop{i}/canary/web": {}}})  # a deployment route: no instances yet
    return docs


def render_and_validate(n: int) -> tuple[float, float, float]:
    """(seconds to build specs from stored documents + render, seconds of haproxy -c, total)."""
    from chalicelib.gateways import haproxy, spec

    docs = _gateways(n)
    started = time.perf_counter()
    specs = spec.from_documents(docs, lambda kind, name: None)
    rendered = haproxy.render("bench", specs, haproxy.Options(virtual_hosts_port=8081))
    rendered_at = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "haproxy.cfg"
        path.write_text(rendered.text)
        out = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True,
                             env={**os.environ, "VAMP_LOG_SOCKET": f"{tmp}/log.sock"})
    done = time.perf_counter()
    if out.returncode != 0:
        raise RuntimeError(f"haproxy -c refused {n} gateways: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return rendered_at - started, done - rendered_at, done - started


def main() -> bool:
    print("\n(a) gateway propagation: API weight change -> new split live in HAProxy")
    samples = bench_propagation()
    p50, p99 = percentiles(samples)
    ok_a = p99 / 1000 < GOAL_PROPAGATION_P99
    print(f"    {len(samples)} changes (100/0 <-> 0/100): p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(samples) * 1000:.0f} ms"
          f"   goal p99 < {GOAL_PROPAGATION_P99 * 1000:.0f} ms: {verdict(ok_a)}")

    print("\n(c) render + validate (haproxy -c), gateways of 5 routes")
    render_and_validate(10)  # warm up: DSL models, templates
    results = {n: min((render_and_validate(n) for _ in range(2)), key=lambda r: r[2]) for n in (100, 1000)}
    for n, (render_s, check_s, total) in results.items():
        print(f"    {n:5} gateways: render {render_s * 1000:7.0f} ms + haproxy -c {check_s * 1000:6.0f} ms = {total * 1000:7.0f} ms")
    ratio = results[1000][2] / results[100][2]
    ok_c = results[1000][2] < GOAL_RENDER_S and ratio <= GOAL_RATIO
    print(f"    1,000 gateways {results[1000][2]:.2f} s (goal < {GOAL_RENDER_S:.0f} s), ratio to 100: {ratio:.1f} "
          f"(goal <= {GOAL_RATIO}): {verdict(ok_c)}")
    return ok_a and ok_c


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
