"""Receive HAProxy's access logs on a unix datagram socket and feed the pipeline.

One datagram is one log line (`format raw`). A datagram socket never blocks HAProxy: if the
agent falls behind and the kernel buffer fills, HAProxy drops the message (HAProxy counts it as
a dropped log, not a failed request), so a slow agent can never slow traffic down.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Callable

from agent.logs.aggregator import Aggregator
from agent.logs.parser import parse
from agent.metrics import AgentMetrics

log = logging.getLogger("agent.receiver")


class Pipeline:
    """parse -> aggregate -> batch for shipping; the function the benchmark times."""

    def __init__(self, aggregator: Aggregator, metrics: AgentMetrics,
                 ship: Callable[[str, bytes], None] | None) -> None:
        self.aggregator = aggregator
        self.metrics = metrics
        self.ship = ship

    def feed(self, raw: bytes) -> None:
        self.metrics.lines_received.value += 1
        record = parse(raw)
        if record is None:
            self.metrics.lines_invalid.value += 1
            return
        self.aggregator.add(record.gateway, record.route, record.status, record.tt)
        if self.ship is not None:
            self.ship(record.day, record.doc)


class LogReceiver:
    def __init__(self, path: Path, pipeline: Pipeline, rcvbuf: int = 4 * 1024 * 1024) -> None:
        self.path = path
        self.pipeline = pipeline
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:  # a larger buffer absorbs bursts while the agent is busy (capped by rmem_max)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._sock.bind(str(path))
        os.chmod(path, 0o666)  # HAProxy workers may drop privileges
        self._sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-receiver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        recv, feed = self._sock.recv, self.pipeline.feed
        while not self._stop.is_set():
            try:
                raw = recv(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            try:
                feed(raw)
            except Exception:
                log.exception("log line dropped by a pipeline error")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        self.path.unlink(missing_ok=True)
