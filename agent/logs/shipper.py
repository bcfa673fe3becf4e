"""Ship log documents to OpenSearch with `_bulk`, into daily indices, through the spool on failure.

The log thread calls add(); full batches (and, every `interval`, partial ones) go to the shipper
thread through a short queue. The shipper posts them; when OpenSearch is unreachable it writes
the batch to the spool and from then on sends new batches to the spool too (order is kept and
memory stays flat), and drains the spool, oldest first, with capped exponential backoff between
attempts. If the queue is full (OpenSearch slow), the log thread spills to the spool itself.
Delivery is at-least-once: a batch whose response was lost is sent again.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from agent.backoff import CAP, OPENSEARCH, Backoff
from agent.logs.spool import Spool
from agent.metrics import AgentMetrics

log = logging.getLogger("agent.shipper")

_RETRYABLE = {429, 500, 502, 503, 504}


class BulkClient:
    """opensearch-py, imported only when logs are shipped (it is heavy)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        from opensearchpy import OpenSearch  # only agents that ship logs load the client

        self.client = OpenSearch(hosts=[url], timeout=timeout, max_retries=0, retry_on_timeout=False)

    def bulk(self, body: bytes) -> dict[str, Any]:
        return self.client.bulk(body=body)


class Shipper:
    def __init__(self, client: BulkClient | Any, spool: Spool, metrics: AgentMetrics, namespace: str, *,
                 batch_lines: int = 2000, interval: float = 1.0, backoff_max: float = CAP,
                 queue_batches: int = 8) -> None:
        self.client = client
        self.spool = spool
        self.metrics = metrics
        self.prefix = f"vamp-logs-{namespace}-".encode()
        self.batch_lines = batch_lines
        self.interval = interval
        self.backoff_max = backoff_max
        self.online = True
        self._batch: list[bytes] = []
        self._batch_lock = threading.Lock()
        self._queue: queue.Queue[list[bytes]] = queue.Queue(maxsize=queue_batches)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)

    # -- log thread ------------------------------------------------------------------------------
    def add(self, day: str, doc: bytes) -> None:
        entry = b"%s%s\t%s\n" % (self.prefix, day.encode(), doc)
        with self._batch_lock:
            self._batch.append(entry)
            if len(self._batch) < self.batch_lines:
                return
            batch, self._batch = self._batch, []
        self._hand_over(batch)

    def _hand_over(self, batch: list[bytes]) -> None:
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self._to_spool(batch)

    def _take_partial(self) -> list[bytes]:
        with self._batch_lock:
            batch, self._batch = self._batch, []
        return batch

    # -- shipper thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        retry = Backoff(OPENSEARCH, self.backoff_max)
        next_flush = time.monotonic() + self.interval
        next_try = 0.0
        while not self._stop.is_set():
            wake = next_flush if not self.spool else min(next_flush, next_try)
            try:
                batch = self._queue.get(timeout=max(0.0, wake - time.monotonic()))
            except queue.Empty:
                batch = []
            now = time.monotonic()
            if now >= next_flush:
                batch += self._take_partial()
                next_flush = now + self.interval
            if batch:
                if self.spool or not self.online:
                    self._to_spool(batch)  # keep order: older lines are waiting on disk
                elif not self._ship(batch):
                    self._to_spool(batch)
                    self.online, next_try = False, now + retry.pause()
            if self.spool and time.monotonic() >= next_try:
                if self._drain():
                    self.online, next_try = True, 0.0
                    retry.reset()
                else:
                    self.online = False
                    next_try = time.monotonic() + retry.pause()

    def _drain(self, max_seconds: float = 2.0) -> bool:
        """Ship spooled lines, oldest first, for a while; False at the first failure."""
        deadline = time.monotonic() + max_seconds
        while self.spool and time.monotonic() < deadline and not self._stop.is_set():
            oldest = self.spool.oldest()
            if oldest is None:
                break
            segment, entries = oldest
            if not entries:
                self.spool.consumed(segment, 0)
                continue
            for start in range(0, len(entries), self.batch_lines):
                chunk = entries[start:start + self.batch_lines]
                if not self._ship(chunk):
                    return False
                self.spool.consumed(segment, len(chunk))
        self.metrics.spool_bytes.set(self.spool.bytes)
        return True

    def _ship(self, entries: list[bytes]) -> bool:
        """One _bulk request. True when OpenSearch took it (items it refused for good are
        dropped and counted; items refused for now go back to the spool)."""
        body = bytearray()
        for entry in entries:
            index, _, doc = entry.partition(b"\t")
            body += b'{"index":{"_index":"%s"}}\n' % index
            body += doc
        try:
            result = self.client.bulk(bytes(body))
        except Exception as exc:  # connection refused, timeout, 5xx: all mean "not now"
            self.metrics.ship_failures.inc()
            if self.online:
                log.warning("OpenSearch unavailable (%s); spooling logs", exc)
            return False
        shipped, retry, refused = len(entries), [], 0
        if result.get("errors"):
            for entry, item in zip(entries, result.get("items", [])):
                status = next(iter(item.values())).get("status", 200)
                if status in _RETRYABLE:
                    retry.append(entry)
                elif status >= 300:
                    refused += 1
            if len(retry) == len(entries):  # e.g. every item 429: OpenSearch is overloaded
                self.metrics.ship_failures.inc()
                return False
            shipped -= len(retry) + refused
        self.metrics.lines_shipped.inc(shipped)
        if refused:
            self.metrics.lines_dropped.inc(refused)
            log.warning("OpenSearch refused %d log lines for good", refused)
        if retry:
            self._to_spool(retry)
        return True

    def _to_spool(self, batch: list[bytes]) -> None:
        kept = self.spool.append(batch)
        self.metrics.lines_spooled.inc(kept)
        self.metrics.spool_bytes.set(self.spool.bytes)

    def stop(self) -> None:
        """Stop shipping; whatever is still in memory goes to the spool for the next run."""
        self._stop.set()
        self._thread.join(timeout=15)
        pending = self._take_partial()
        while True:
            try:
                pending += self._queue.get_nowait()
            except queue.Empty:
                break
        if pending:
            self._to_spool(pending)
        self.spool.close()


