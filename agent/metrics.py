"""Every Prometheus series the agent exports, in one place so /metrics reads like a table of contents.

prometheus_client, on a registry of the agent's own rather than the process-wide default: several
agents in one process (the tests) each count for themselves. The names are the ones dashboards
already use: Counters are named with their `_total`, which prometheus_client exports as is.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# prometheus_client adds a `<name>_created` series to every counter and histogram; the agent never
# exported those, and they would double its series. Process-wide, like the library's switch.
disable_created_metrics()

DEAD_LETTER_REASONS = ("refused", "too_large", "bad_request", "retries_exhausted", "malformed")
APPLY_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AgentMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "vamp_agent_"

        def counter(name: str, documentation: str) -> Counter:
            return Counter(p + name, documentation, registry=r)

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(p + name, documentation, registry=r)

        self.reloads = counter("reloads_total", "HAProxy reloads completed")
        self.reload_failures = counter("reload_failures_total", "reloads HAProxy itself refused after haproxy -c passed")
        self.rejected = counter("rejected_configs_total", "configurations rejected by haproxy -c")
        self.apply_seconds = Histogram(p + "apply_latency_seconds", "seconds from the etcd event to the reload done",
                                       buckets=APPLY_LATENCY_BUCKETS, registry=r)
        self.haproxy_restarts = counter("haproxy_restarts_total", "HAProxy masters restarted after dying")
        self.etcd_reconnects = counter("etcd_reconnects_total", "etcd watch (re)connections after a failure")
        self.etcd_connected = gauge("etcd_connected", "1 while the etcd watch is established")
        self.lines_received = counter("log_lines_received_total", "access-log lines received from HAProxy")
        self.lines_invalid = counter("log_lines_invalid_total", "access-log lines that were not valid JSON")
        self.lines_shipped = counter("log_lines_shipped_total", "access-log lines indexed in OpenSearch")
        self.lines_dropped = counter("log_lines_dropped_total", "access-log lines lost (spool full, or refused by OpenSearch)")
        self.lines_dead_lettered = Counter(
            p + "log_lines_dead_lettered_total", "access-log lines OpenSearch refused for good, kept in the spool "
            "directory's dead-letters file, by why: refused (an item's 4xx), too_large (413 alone), bad_request "
            "(a 400 alone), retries_exhausted (5xx on every try), malformed (an unreadable spool line)",
            ["reason"], registry=r)
        for reason in DEAD_LETTER_REASONS:  # every series exported from the start, at 0
            self.lines_dead_lettered.labels(reason=reason)
        self.lines_spooled = counter("log_lines_spooled_total", "access-log lines written to the spool")
        self.log_queue_length = gauge("log_socket_queue_length", "datagrams the log socket can queue (net.unix.max_dgram_qlen)")
        self.spool_bytes = gauge("spool_bytes", "bytes in the on-disk spool")
        self.ship_failures = counter("ship_failures_total", "_bulk requests that failed")
        self.events_posted = counter("metric_events_posted_total", "metric events accepted by the Vamp API")
        self.events_dropped = counter("metric_events_dropped_total", "metric events dropped (API unreachable)")
