"""The agent: wires settings to HAProxy, the etcd watch, the applier, the log pipeline and HTTP."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from agent.acknowledger import Acknowledger
from agent.applier import Applier
from agent.events import EventPoster
from agent.haproxy import HAProxy
from agent.http import StatusServer
from agent.logs.aggregator import Aggregator, to_events
from agent.logs.dead_letters import DeadLetters
from agent.logs.receiver import LogReceiver, Pipeline
from agent.logs.shipper import BulkClient, Shipper, sigv4_auth
from agent.logs.spool import Spool
from agent.metrics import AgentMetrics
from agent.settings import AgentSettings
from agent.watcher import EtcdWatcher

log = logging.getLogger("agent")


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        """SettingsError (agent/settings.py) when a setting it cannot run with is given or missing:
        no signing key, status beyond loopback without a token, an unreadable secret file."""
        self.settings = s = settings
        s.check()
        s.work_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = m = AgentMetrics()
        token = s.api_token_value
        self.events = EventPoster(s.events_url, token) if s.events_url else None
        self.haproxy = HAProxy(s.haproxy_bin, s.work_dir, s.log_socket_path, backoff_max=s.backoff_max,
                               on_restart=m.haproxy_restarts.inc, node_address=s.node_address)
        self.acknowledger = (Acknowledger(s.api_url, token, s.node_id, s.namespace, s.heartbeat_interval,
                                          lambda: self.applier.state) if s.api_url else None)
        self.applier = Applier(self.haproxy, m, signing_keys=s.signing_keys, namespace=s.namespace,
                               version=s.haproxy_version, events=self.events, reload_timeout=s.reload_timeout,
                               on_done=self.acknowledger.report_now if self.acknowledger else None)
        self.watcher = EtcdWatcher(s.etcd_access, s.prefix, self.applier.submit, m, backoff_max=s.backoff_max)
        self.aggregator = Aggregator()
        self.shipper: Shipper | None = None
        if s.opensearch_url:
            spool = Spool(s.work_dir / "spool", s.spool_max_bytes, on_drop=m.lines_dropped.inc)
            m.spool_bytes.set(spool.bytes)
            auth = sigv4_auth(s.sigv4_region, s.opensearch_service) if s.opensearch_sigv4 else None
            self.shipper = Shipper(BulkClient(s.opensearch_url, auth=auth), spool, m, s.namespace,
                                   batch_lines=s.ship_batch_lines, batch_bytes=s.ship_batch_bytes,
                                   interval=s.ship_interval, backoff_max=s.backoff_max,
                                   item_attempts=s.ship_item_attempts,
                                   dead_letters=DeadLetters(spool.directory, s.dead_letter_max_bytes, m))
        self.pipeline = Pipeline(self.aggregator, m, self.shipper.add if self.shipper else None)
        self.receiver: LogReceiver | None = None
        listen_host, listen_port = s.listen_host_port
        self.http = StatusServer(listen_host, listen_port, self.health, m.registry, token=s.status_token_value)
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="metric-windows", daemon=True)

    def start(self) -> None:
        # The log socket first, so HAProxy's first lines have somewhere to go.
        self.receiver = LogReceiver(self.settings.log_socket_path, self.pipeline)
        self.metrics.log_queue_length.set(self.receiver.queue_length or 0)
        self.receiver.start()
        self.haproxy.start()
        self.applier.start()
        if self.shipper:
            self.shipper.start()
        self.watcher.start()
        if self.acknowledger:
            self.acknowledger.start()
        self.http.start()
        self._flusher.start()
        log.info("agent up: key %s, status on %s", self.settings.config_key, self.http.url)

    def stop(self) -> None:
        """Stop taking changes, stop HAProxy (its last lines still arrive), flush, spool."""
        self._stop.set()
        self.watcher.stop()
        if self.acknowledger:
            self.acknowledger.stop()
        self.applier.stop()
        self.haproxy.stop()
        time.sleep(0.05)  # the last datagrams HAProxy sent while stopping
        if self.receiver:
            self.receiver.stop()
        self._flusher.join(timeout=5)
        self.flush_window(timeout=2.0)
        if self.shipper:
            self.shipper.stop()
        self.http.stop()
        log.info("agent stopped")

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.settings.aggregate_interval):
            self.flush_window()

    def flush_window(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Close the current metric window and post its events in one request."""
        series, seconds = self.aggregator.flush()
        events = to_events(series, seconds)
        if events and self.events:
            if timeout is not None:
                self.events.timeout = timeout
            if self.events.post(events):
                self.metrics.events_posted.inc(len(events))
            else:
                self.metrics.events_dropped.inc(len(events))
        return events

    def health(self) -> tuple[bool, dict[str, Any]]:
        running = self.haproxy.running()
        a, w = self.applier.state, self.watcher.state
        ok = running and a.applied
        return ok, {
            "status": "ok" if ok else "unavailable",
            "haproxy_running": running,
            "config_applied": a.applied,
            "config_checksum": a.checksum,
            "config_revision": a.revision,
            "config_generation": a.generation,
            "node": self.settings.node_id,
            "last_rejected_revision": a.last_rejected_revision,
            "last_error": a.last_error,
            "rejected_stage": a.rejected_stage,
            "rejected_gateways": list(a.rejected_gateways),
            "signing_key_id": a.key_id,
            "etcd_connected": w.connected,
            "last_revision": w.last_revision,
            "etcd_revision": w.header_revision,
            "spool_bytes": self.shipper.spool.bytes if self.shipper else 0,
        }
