"""A minimal Prometheus text-format registry: counters, gauges, one histogram.

The agent needs a handful of series and no labels beyond a fixed set, so a dependency-free
registry keeps the node image small. Counters are bumped from one thread each (the GIL makes a
lost update between threads possible but harmless for monitoring).
"""
from __future__ import annotations

import bisect
import threading
from typing import Callable


class Counter:
    kind = "counter"

    def __init__(self, name: str, help_: str) -> None:
        self.name, self.help, self.value = name, help_, 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def samples(self) -> list[tuple[str, float]]:
        return [(self.name, self.value)]


class Gauge:
    kind = "gauge"

    def __init__(self, name: str, help_: str, func: Callable[[], float] | None = None) -> None:
        self.name, self.help, self.value, self.func = name, help_, 0.0, func

    def set(self, value: float) -> None:
        self.value = value

    def samples(self) -> list[tuple[str, float]]:
        return [(self.name, float(self.func() if self.func else self.value))]


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.buckets, value)] += 1
            self.sum += value

    def samples(self) -> list[tuple[str, float]]:
        with self._lock:
            out, total = [], 0
            for bound, count in zip(self.buckets, self.counts):
                total += count
                out.append((f'{self.name}_bucket{{le="{bound:g}"}}', float(total)))
            total += self.counts[-1]
            out += [(f'{self.name}_bucket{{le="+Inf"}}', float(total)),
                    (f"{self.name}_sum", self.sum), (f"{self.name}_count", float(total))]
            return out


class Registry:
    def __init__(self) -> None:
        self._metrics: list[Counter | Gauge | Histogram] = []

    def counter(self, name: str, help_: str) -> Counter:
        return self._add(Counter(name, help_))

    def gauge(self, name: str, help_: str, func: Callable[[], float] | None = None) -> Gauge:
        return self._add(Gauge(name, help_, func))

    def histogram(self, name: str, help_: str, buckets: tuple[float, ...]) -> Histogram:
        return self._add(Histogram(name, help_, buckets))

    def _add(self, metric):  # type: ignore[no-untyped-def]
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for m in self._metrics:
            lines += [f"# HELP {m.name} {m.help}", f"# TYPE {m.name} {m.kind}"]
            lines += [f"{name} {value:g}" if value != int(value) or abs(value) >= 1e15 else f"{name} {int(value)}"
                      for name, value in m.samples()]
        return "\n".join(lines) + "\n"


class AgentMetrics:
    """Every series the agent exports, in one place so /metrics reads like a table of contents."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        p = "vamp_agent_"
        self.reloads = r.counter(p + "reloads_total", "HAProxy reloads completed")
        self.reload_failures = r.counter(p + "reload_failures_total", "reloads HAProxy itself refused after haproxy -c passed")
        self.rejected = r.counter(p + "rejected_configs_total", "configurations rejected by haproxy -c")
        self.apply_seconds = r.histogram(
            p + "apply_latency_seconds", "seconds from the etcd event to the reload done",
            (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
        self.haproxy_restarts = r.counter(p + "haproxy_restarts_total", "HAProxy masters restarted after dying")
        self.etcd_reconnects = r.counter(p + "etcd_reconnects_total", "etcd watch (re)connections after a failure")
        self.etcd_connected = r.gauge(p + "etcd_connected", "1 while the etcd watch is established")
        self.lines_received = r.counter(p + "log_lines_received_total", "access-log lines received from HAProxy")
        self.lines_invalid = r.counter(p + "log_lines_invalid_total", "access-log lines that were not valid JSON")
        self.lines_shipped = r.counter(p + "log_lines_shipped_total", "access-log lines indexed in OpenSearch")
        self.lines_dropped = r.counter(p + "log_lines_dropped_total", "access-log lines lost (spool full, or refused by OpenSearch)")
        self.lines_spooled = r.counter(p + "log_lines_spooled_total", "access-log lines written to the spool")
        self.log_queue_length = r.gauge(p + "log_socket_queue_length", "datagrams the log socket can queue (net.unix.max_dgram_qlen)")
        self.spool_bytes = r.gauge(p + "spool_bytes", "bytes in the on-disk spool")
        self.ship_failures = r.counter(p + "ship_failures_total", "_bulk requests that failed")
        self.events_posted = r.counter(p + "metric_events_posted_total", "metric events accepted by the Vamp API")
        self.events_dropped = r.counter(p + "metric_events_dropped_total", "metric events dropped (API unreachable)")
