"""Receive HAProxy's access logs on a unix datagram socket and feed the pipeline.

One datagram is one log line (`format raw`). A datagram socket never blocks HAProxy: if the
agent falls behind and the socket's queue is full, HAProxy drops the message (a lost log line,
never a failed or slowed request).

That queue is short by default: Linux lets at most net.unix.max_dgram_qlen datagrams (10 on
most systems) wait on a unix datagram socket, read when the socket is created. A burst longer
than that while the agent is busy loses lines, so the deployment files raise it to 4096 before
the agent starts (systemd ExecStartPre, DaemonSet init container) and the agent warns when it
finds it low.
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

QLEN_SYSCTL = Path("/proc/sys/net/unix/max_dgram_qlen")
QLEN_ADVISED = 1024


def dgram_queue_length() -> int | None:
    try:
        return int(QLEN_SYSCTL.read_text())
    except (OSError, ValueError):
        return None


class Pipeline:
    """parse -> aggregate -> batch for shipping; the function the benchmark times."""

    def __init__(self, aggregator: Aggregator, metrics: AgentMetrics,
                 ship: Callable[[str, bytes], None] | None) -> None:
        self.aggregator = aggregator
        self.metrics = metrics
        self.ship = ship

    def feed(self, raw: bytes) -> None:
        self.metrics.lines_received.inc()
        record = parse(raw)
        if record is None:
            self.metrics.lines_invalid.inc()
            return
        self.aggregator.add(record.gateway, record.route, record.status, record.tt)
        if self.ship is not None:
            self.ship(record.day, record.doc)


class LogReceiver:
    def __init__(self, path: Path, pipeline: Pipeline, rcvbuf: int = 4 * 1024 * 1024) -> None:
        self.path = path
        self.pipeline = pipeline
        self.queue_length = dgram_queue_length()
        if self.queue_length is not None and self.queue_length < QLEN_ADVISED:
            log.warning("net.unix.max_dgram_qlen is %d: HAProxy will drop log lines in bursts; "
                        "set it to 4096 before starting the agent (sysctl -w net.unix.max_dgram_qlen=4096)",
                        self.queue_length)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:  # a larger buffer absorbs bursts while the agent is busy (capped by rmem_max)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._sock.bind(str(path))
        os.chmod(path, 0o666)  # HAProxy workers may drop privileges
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-receiver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        recv, feed = self._sock.recv, self.pipeline.feed
        # Blocking recv, no timeout: a timeout makes Python poll() before every recv, doubling
        # the syscalls per line. stop() wakes the thread with an empty datagram.
        while not self._stop.is_set():
            try:
                raw = recv(65536)
            except OSError:
                if self._stop.is_set():
                    return
                raise
            if not raw:
                continue
            try:
                feed(raw)
            except Exception:
                log.exception("log line dropped by a pipeline error")

    def stop(self) -> None:
        self._stop.set()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", str(self.path))
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._sock.close()
        self.path.unlink(missing_ok=True)
