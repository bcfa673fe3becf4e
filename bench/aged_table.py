"""Gateway writes on a table aged by telemetry: `python -m bench aged`.

An hour of N agents x M routes posting metric events is written in bulk through the event store
(the agent's window, 10 s: a gateway's 7 figures and, per route, 7 figures and a histogram, as
agent/logs/aggregator.to_events posts them), then gateways are PUT through the local API over
HTTP (chalice's threaded server on moto, as `make run` serves it, publishing to a real etcd)
from a client process of their own: one writer alone, and 50 writers at once (each its own gateway of one namespace: they all race
for the namespace's generation). The same on fresh tables first; p50/p99, the 5xx count, the
ratio aged/fresh. Goals (docs/decisions/0021): a PUT's p99 under 100 ms on the aged table, no
5xx with 50 writers (409s, lost races, are fine).

VAMP_BENCH_AGENTS / VAMP_BENCH_ROUTES change N and M (default 2 x 2: ~106,000 event items, what
the local stack held after an hour); VAMP_EVENTS_TABLE_NAME=vamp-bench-aged puts the events in
the artifacts' table, the layout before 0021, for comparison.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import local_aws, percentiles, verdict  # noqa: E402

AGENTS = int(os.environ.get("VAMP_BENCH_AGENTS", "2"))
ROUTES = int(os.environ.get("VAMP_BENCH_ROUTES", "2"))
WINDOW_S = 10  # the agent's default aggregate_interval
HOUR_S = 3600
WRITERS = 50
ROUNDS = 4  # of the 50 writers
SINGLE = 100  # PUTs of the writer alone
GOAL_P99_MS = 100.0
METRICS = ("requests", "errors", "rate", "p50", "p95", "p99", "responseTime")


def _window_events(gateway: str, routes: list[str], at: datetime) -> list[dict]:
    """One agent's events of one window, tags and values shaped as the agent posts them."""
    from chalicelib.store.event_store import new_event

    events = []
    for names in [(gateway,), *((gateway, r) for r in routes)]:
        tags = [f"gateways:{names[0]}"] + ([f"routes:{names[1]}"] if len(names) == 2 else [])
        for metric in METRICS:
            events.append(new_event(tags + [f"metrics:{metric}"], 12.5, "metrics", at))
        if len(names) == 2:
            events.append(new_event(tags + ["metrics:histogram"], {"5": 40, "10": 55, "25": 5}, "metrics", at))
    return events


def age(namespace: str, agents: int = AGENTS, routes: int = ROUTES) -> tuple[int, float]:
    """An hour of metric events, written through the event store; (events, seconds it took)."""
    from chalicelib.store.event_backend import event_store

    store = event_store()
    route_names = [f"[10.0.0.{i + 1}:8080]" for i in range(routes)]
    start = datetime.now(timezone.utc) - timedelta(seconds=HOUR_S)
    written, began = 0, time.perf_counter()
    batch: list[dict] = []
    for window in range(HOUR_S // WINDOW_S):
        at = start + timedelta(seconds=window * WINDOW_S)
        for _ in range(agents):  # every node posts its own figures of the same routes
            batch += _window_events("shop", route_names, at)
        if len(batch) >= 500:
            store.publish(namespace, batch)
            written, batch = written + len(batch), []
    if batch:
        store.publish(namespace, batch)
        written += len(batch)
    return written, time.perf_counter() - began


class Writers:
    """PUTs gateways of one namespace through the API over HTTP; statuses and seconds kept."""

    def __init__(self, api_url: str, token: str, namespace: str) -> None:
        self.url, self.namespace = api_url, namespace
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.samples: list[float] = []
        self.statuses: Counter = Counter()
        self._lock = threading.Lock()

    def put(self, session: requests.Session, name: str, weight: int) -> None:
        body = {"name": name, "routes": {"[127.0.0.1:8080]": {"weight": f"{weight}%"},
                                         "[127.0.0.2:8080]": {"weight": f"{100 - weight}%"}}}
        began = time.perf_counter()
        try:
            status = session.put(f"{self.url}/{self.namespace}/api/v1/gateways/{name}", json=body,
                                 headers=self.headers, timeout=120).status_code
        except requests.RequestException as e:
            status = type(e).__name__
        with self._lock:
            self.samples.append(time.perf_counter() - began)
            self.statuses[status] += 1

    def alone(self, count: int = SINGLE) -> None:
        with requests.Session() as session:
            for i in range(count):
                self.put(session, "alone", 10 + i % 80)

    def at_once(self, writers: int = WRITERS, rounds: int = ROUNDS) -> None:
        barrier = threading.Barrier(writers)

        def run(i: int) -> None:
            with requests.Session() as session:
                for r in range(rounds):
                    barrier.wait()
                    self.put(session, f"w{i:02d}", 10 + r * 10)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not isinstance(s, int) or s >= 500)

    def line(self, label: str) -> str:
        p50, p99 = percentiles(self.samples)
        seen = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items(), key=str))
        return f"    {label:34} p50 {p50:6.0f} ms  p99 {p99:6.0f} ms  5xx {self.server_errors():3}  ({seen})"


def _write(api_url: str, token: str, namespace: str) -> list[tuple[list[float], Counter]]:
    """The writers' side, run in a process of its own (as clients of `make run` are): their
    threads and HTTP parsing take none of the API's GIL."""
    alone, crowd = Writers(api_url, token, namespace), Writers(api_url, token, namespace)
    Writers(api_url, token, namespace).alone(5)  # warm up: DSL models, templates, connections
    alone.alone()
    crowd.at_once()
    return [(w.samples, w.statuses) for w in (alone, crowd)]


def measure(api_url: str, token: str, namespace: str) -> tuple[Writers, Writers]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.apply(_write, (api_url, token, namespace))
    out = []
    for samples, statuses in results:
        w = Writers(api_url, token, namespace)
        w.samples, w.statuses = samples, statuses
        out.append(w)
    return out[0], out[1]


def main() -> bool:
    from chalicelib.settings import settings
    from chalicelib.store import table
    from local.etcd import LocalEtcd
    from local.stack import LocalStack, free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(f"\n(aged) gateway PUTs after an hour of telemetry ({AGENTS} agents x {ROUTES} routes), "
          f"one writer and {WRITERS} at once")
    with tempfile.TemporaryDirectory() as tmp, local_aws("vamp-bench-aged"):
        work = Path(tmp)
        etcd = LocalEtcd(work / "etcd", free_port(), free_port(), work / "etcd.log").start()
        os.environ.update(VAMP_ETCD_ENDPOINT=etcd.endpoint, VAMP_VIRTUAL_HOSTS_PORT="0")
        settings.cache_clear()
        stack = LocalStack(api_port=free_port(), state_dir=work / "state", persist=False, quiet=True, gateways=False)
        try:
            stack.start()
            shared = table.events_table_name() == table.table_name()
            print(f"    events in {'the artifacts table (before 0021)' if shared else 'their own table'}")
            fresh = measure(stack.api_url, stack.token, "fresh")
            events, seconds = age("aged")
            print(f"    aged: {events:,} events written in {seconds:.0f} s")
            aged = measure(stack.api_url, stack.token, "aged")
        finally:
            stack.stop()
            etcd.stop()
            for key in ("VAMP_ETCD_ENDPOINT", "VAMP_VIRTUAL_HOSTS_PORT", "VAMP_GATEWAY_SIGNING_KEY_FILE"):
                os.environ.pop(key, None)
            settings.cache_clear()
    for label, (alone, crowd) in (("fresh", fresh), ("aged", aged)):
        print(alone.line(f"{label}, one writer ({SINGLE} PUTs)"))
        print(crowd.line(f"{label}, {WRITERS} writers x {ROUNDS} rounds"))
    ratio_alone = percentiles(aged[0].samples)[1] / percentiles(fresh[0].samples)[1]
    ratio_crowd = percentiles(aged[1].samples)[1] / percentiles(fresh[1].samples)[1]
    aged_p99 = percentiles(aged[0].samples)[1]
    errors = aged[0].server_errors() + aged[1].server_errors() + fresh[0].server_errors() + fresh[1].server_errors()
    ok = aged_p99 < GOAL_P99_MS and errors == 0
    print(f"    p99 aged/fresh: one writer {ratio_alone:.2f}, {WRITERS} writers {ratio_crowd:.2f}")
    print(f"    goal: aged p99 < {GOAL_P99_MS:.0f} ms (one writer: {aged_p99:.0f} ms), no 5xx ({errors}): {verdict(ok)}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
