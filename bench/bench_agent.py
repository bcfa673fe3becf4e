"""Gateway agent benchmarks: `python bench/bench_agent.py` (add `--quick` for a short run).

(b) failed requests while HAProxy reloads 50 times under concurrent load  (goal: 0)
(d) access-log lines per second on one core, parsed + aggregated + batched into _bulk bodies
    (goal: >= 50,000/s), and peak memory of that pipeline at 100k vs 1M lines (goal: flat).
"""
from __future__ import annotations

import gc
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.applier import Applier  # noqa: E402
from agent.haproxy import HAProxy  # noqa: E402
from agent.logs.aggregator import Aggregator, to_events  # noqa: E402
from agent.logs.receiver import Pipeline  # noqa: E402
from agent.logs.shipper import Shipper  # noqa: E402
from agent.logs.spool import Spool  # noqa: E402
from agent.metrics import AgentMetrics  # noqa: E402
from chalicelib.contract import envelope  # noqa: E402
from chalicelib.contract.log_format import backend_name, frontend_name  # noqa: E402
from tests.agent.helpers import SIGNING_KEY, Backend, Load, free_port, haproxy_config, sample, wait_for  # noqa: E402

GOAL_LINES_PER_S = 50_000


# -- (b) reloads under load --------------------------------------------------------------------
def bench_reloads(reloads: int = 50, threads: int = 4) -> dict:
    a, b = Backend("A"), Backend("B")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        haproxy = HAProxy("haproxy", work, work / "log.sock")
        haproxy.start()
        try:
            metrics = AgentMetrics()
            applier = Applier(haproxy, metrics, signing_keys=(SIGNING_KEY,), namespace="bench", version="2.6")
            port = free_port()

            def signed_apply(text: str, generation: int, t: float) -> str:
                data = text.encode()  # signed as the control plane does (docs/decisions/0023)
                return applier.apply(data, generation, generation, t,
                                     envelope.sign(SIGNING_KEY, "bench", "2.6", generation, data).encode())

            assert signed_apply(haproxy_config(port, [("a", a.port, 50), ("b", b.port, 50)]), 1,
                                time.monotonic()) == "applied"
            latencies = []
            with Load(port, threads=threads) as load:
                wait_for(lambda: load.ok > 50, 10)
                for i in range(reloads):
                    weight = (i * 37) % 101
                    cfg = haproxy_config(port, [("a", a.port, weight), ("b", b.port, 100 - weight)])
                    t = time.monotonic()
                    assert signed_apply(cfg, i + 2, t) == "applied"
                    latencies.append(time.monotonic() - t)
                    time.sleep(0.02)  # let requests land on every generation of workers
        finally:
            haproxy.stop()
    a.stop()
    b.stop()
    return {"reloads": int(sample(metrics, "vamp_agent_reloads_total")) - 1, "requests": load.ok,
            "failed": len(load.failures),
            "apply_p50_ms": statistics.median(latencies) * 1000,
            "apply_max_ms": max(latencies) * 1000, "examples": load.failures[:3]}


# -- (d) log pipeline --------------------------------------------------------------------------
def make_lines(n: int = 20_000, seed: int = 7) -> list[bytes]:
    """Distinct, realistic lines: 5 gateways x 4 routes, heavy-tailed Tt, 2% 5xx, 500 lines a second
    (a tenth of the target rate, so per-second caches are not flattered)."""
    rnd = random.Random(seed)
    names = [(f"app{g}/90{g}0", f"app{g}/app{g}:1.{r}.0/web") for g in range(5) for r in range(4)]
    lines = []
    for i in range(n):
        gw, rt = rnd.choice(names)
        tt = int(rnd.lognormvariate(3.5, 1.0))
        status = 503 if rnd.random() < 0.02 else 200
        lines.append((
            '{"client_ip":"10.1.%d.%d","client_port":%d,"timestamp":%d.%03d,"frontend":"%s","backend":"%s",'
            '"server":"%s","Tq":0,"Tw":0,"Tc":1,"Tr":%d,"Tt":%d,"status":%d,"bytes_read":%d,'
            '"termination_state":"--","actconn":12,"feconn":10,"beconn":4,"srv_conn":2,"retries":"0",'
            '"srv_queue":0,"backend_queue":0,"request":"GET /api/items/%d?page=%d HTTP/1.1"}'
            % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1024, 65535), 1_700_000_000 + i // 500,
               rnd.randrange(1000), frontend_name(gw), backend_name(gw, rt), f"{rt.split('/')[1]}-{i % 3}",
               max(0, tt - 1), tt, status, rnd.randrange(200, 20000), rnd.randrange(10**6), rnd.randrange(50))
        ).encode())
    return lines


class _NullBulk:
    def bulk(self, body: bytes) -> dict:
        return {"errors": False}


class _InlineShipper(Shipper):
    """The real batching and _bulk body building, shipped inline to a client that accepts all."""

    def _hand_over(self, batch: list[bytes]) -> None:
        self._ship(batch)


def run_pipeline(lines: list[bytes], total: int, window_lines: int = 500_000) -> tuple[float, int]:
    """Feed `total` lines; returns (seconds, events produced). Windows close every window_lines
    (10 s of traffic at 50k lines/s)."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = AgentMetrics()
        shipper = _InlineShipper(_NullBulk(), Spool(Path(tmp), 1 << 20), metrics, "bench", batch_lines=2000)
        aggregator = Aggregator()
        pipeline = Pipeline(aggregator, metrics, shipper.add)
        feed, n, events = pipeline.feed, len(lines), 0
        start = time.perf_counter()
        for i in range(total):
            feed(lines[i % n])
            if i % window_lines == window_lines - 1:
                series, seconds = aggregator.flush()
                events += len(to_events(series, 10.0))
        events += len(to_events(*aggregator.flush()))
        elapsed = time.perf_counter() - start
        assert sample(metrics, "vamp_agent_log_lines_invalid_total") == 0
        assert sample(metrics, "vamp_agent_log_lines_shipped_total") == total - len(shipper._batch)
    return elapsed, events


_SENDER = """
import socket, sys
lines = [l.encode() for l in sys.stdin.read().split("\\n") if l]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path, total = sys.argv[1], int(sys.argv[2])
for i in range(total):
    s.sendto(lines[i % len(lines)], path)   # blocking: waits instead of dropping when the agent lags
"""


def socket_throughput(lines: list[bytes], total: int) -> tuple[float, int]:
    """Lines/s through the real unix datagram socket into LogReceiver (sender in another process)."""
    import subprocess

    from agent.logs.receiver import LogReceiver

    with tempfile.TemporaryDirectory() as tmp:
        metrics = AgentMetrics()
        shipper = _InlineShipper(_NullBulk(), Spool(Path(tmp) / "spool", 1 << 20), metrics, "bench")
        receiver = LogReceiver(Path(tmp) / "log.sock", Pipeline(Aggregator(), metrics, shipper.add))
        receiver.start()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _SENDER, str(receiver.path), str(total)],
                       input=b"\n".join(lines[:2000]), check=True)
        wait_for(lambda: sample(metrics, "vamp_agent_log_lines_received_total") >= total, 60)
        elapsed = time.perf_counter() - start
        receiver.stop()
    return total / elapsed, int(sample(metrics, "vamp_agent_log_lines_received_total"))


def peak_memory(lines: list[bytes], total: int) -> int:
    gc.collect()
    tracemalloc.start()
    run_pipeline(lines, total)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    quick = "--quick" in sys.argv
    rows: list[tuple[str, str, str, bool | None]] = []

    print("(b) reloading HAProxy under concurrent load ...", flush=True)
    r = bench_reloads(reloads=10 if quick else 50)
    rows.append((f"(b) failed requests during {r['reloads']} reloads ({r['requests']} requests, 4 clients)",
                 str(r["failed"]), "0", r["failed"] == 0))
    rows.append(("    apply (write + haproxy -c + reload) p50 / max",
                 f"{r['apply_p50_ms']:.0f} / {r['apply_max_ms']:.0f} ms", "-", None))

    print("(d) log pipeline on one core ...", flush=True)
    lines = make_lines()
    total = 200_000 if quick else 1_000_000
    run_pipeline(lines, 20_000)  # warm caches
    seconds, events = run_pipeline(lines, total)
    rate = total / seconds
    rows.append((f"(d) lines/s parsed+aggregated+batched ({total:,} lines, {events} events)", f"{rate:,.0f}",
                 f">= {GOAL_LINES_PER_S:,}", rate >= GOAL_LINES_PER_S))
    sock_rate, _ = socket_throughput(lines, 100_000 if quick else 300_000)
    from agent.logs.receiver import dgram_queue_length

    rows.append((f"    same, through the unix socket (Python sender process, qlen {dgram_queue_length()})",
                 f"{sock_rate:,.0f}", "-", None))
    small = peak_memory(lines, 100_000)
    large = peak_memory(lines, 1_000_000 if not quick else 300_000)
    rows.append(("(d) peak pipeline memory at 100k lines", f"{small / 2**20:.2f} MiB", "-", None))
    big_label = "1M" if not quick else "300k"
    rows.append((f"(d) peak pipeline memory at {big_label} lines", f"{large / 2**20:.2f} MiB",
                 "<= 1.5x the 100k figure", large <= 1.5 * small))

    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'gateway agent':<{width}}  {'measured':>16}  {'goal':>24}  result")
    print("-" * (width + 54))
    for label, value, goal, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"{label:<{width}}  {value:>16}  {goal:>24}  {verdict}")
    if r["examples"]:
        print("failures, e.g.:", r["examples"])


if __name__ == "__main__":
    main()
