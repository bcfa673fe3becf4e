"""Ship log documents to OpenSearch with `_bulk`, into daily indices, through the spool on failure.

The log thread calls add(); full batches (and, every `interval`, partial ones) go to the shipper
thread through a short queue. The shipper posts them; when OpenSearch is unreachable it writes
the batch to the spool and from then on sends new batches to the spool too (order is kept and
memory stays flat), and drains the spool, oldest first, with capped exponential backoff between
attempts. If the queue is full (OpenSearch slow), the log thread spills to the spool itself.
Delivery is at-least-once: a batch whose response was lost is sent again.

Before its first write the shipper installs the `vamp-logs` index template when the cluster
lacks it (indices.py), retried with backoff; until then lines wait in the spool. A request holds
at most `batch_lines` lines and `batch_bytes` of body (below OpenSearch's http.max_content_length,
100mb by default). What OpenSearch answers decides each line (docs/decisions/0028):
- the whole request unreachable, timed out, 429, 5xx, 401/403: not now (spool, back off);
- the whole request 413 or another 4xx: the lines are split in halves and each half sent; a
  line refused on its own is dead-lettered (too_large, bad_request);
- an item 429 (OpenSearch pushes back) or 403 (a write block: the disk's flood stage): sent again
  after a jittered pause, for as long as it takes; an item 5xx: sent again after a pause, at most `item_attempts` times in all (the count
  travels with the line in the spool), then dead-lettered (retries_exhausted); any other item
  status is dead-lettered at once (refused). Dead letters: dead_letters.py.
"""
from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from typing import Any, Iterator

from agent.backoff import CAP, OPENSEARCH, Backoff
from agent.logs.dead_letters import DeadLetters
from agent.logs.indices import LOGS_TEMPLATE, TEMPLATE_NAME, index_prefix, namespace_problem
from agent.logs.spool import Spool
from agent.metrics import AgentMetrics
from agent.settings import SettingsError

log = logging.getLogger("agent.shipper")

BATCH_BYTES = 5 * 1024 * 1024
ITEM_ATTEMPTS = 10  # with the default backoff, about 80 s of pauses before a 5xx line is given up
DEAD_LETTER_BYTES = 16 * 1024 * 1024
_NOT_NOW = frozenset({401, 403, 408, 429, 500, 502, 503, 504})  # statuses of a whole request
_ITEM_FAILING = frozenset({500, 502, 503, 504})
_ACTION = b'{"index":{"_index":"%s"}}\n'


class Sent(enum.Enum):
    DONE = "every line shipped or dead-lettered"
    AGAIN = "some lines went back to the spool, to be sent after a pause"
    NOT_NOW = "OpenSearch took nothing: keep the lines, back off"


class BulkClient:
    """opensearch-py, imported only when logs are shipped (it is heavy)."""

    def __init__(self, url: str, timeout: float = 10.0, auth: Any = None) -> None:
        from opensearchpy import OpenSearch  # only agents that ship logs load the client

        self.client = OpenSearch(hosts=[url], timeout=timeout, max_retries=0, retry_on_timeout=False, http_auth=auth)

    def bulk(self, body: bytes) -> dict[str, Any]:
        return self.client.bulk(body=body)

    def ensure_template(self, name: str, template: dict) -> bool:
        """Put the index template unless the cluster has one of that name; True if it was put."""
        if self.client.indices.exists_index_template(name=name):
            return False
        self.client.indices.put_index_template(name=name, body=template)
        return True


def sigv4_auth(region: str, service: str) -> Any:
    """Signature Version 4 for an IAM-protected domain, with botocore's credential chain
    (environment, profile, the instance's or task's role), refreshed as they expire."""
    import botocore.session  # only agents that sign load botocore
    from opensearchpy import Urllib3AWSV4SignerAuth

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise SettingsError("--opensearch-sigv4: no AWS credentials found (AWS_ACCESS_KEY_ID..., ~/.aws, or the "
                            "instance's or task's role)")
    return Urllib3AWSV4SignerAuth(credentials, region, service)


def split_entry(entry: bytes) -> tuple[bytes, int, bytes] | None:
    """(index, attempts so far, document) of a spool line `<index>\\t[<attempts>\\t]<document>\\n`."""
    index, sep, rest = entry.partition(b"\t")
    if not sep or not index or not rest.endswith(b"\n") or len(rest) < 2:
        return None
    count, sep, doc = rest.partition(b"\t")
    if sep and count.isdigit():  # a document is a JSON object: it never starts with digits and a tab
        return index, int(count), doc
    return index, 0, rest


def join_entry(index: bytes, attempts: int, doc: bytes) -> bytes:
    return b"%s\t%d\t%s" % (index, attempts, doc) if attempts else b"%s\t%s" % (index, doc)


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)  # opensearch-py's TransportError; "N/A" when none came
    return status if isinstance(status, int) else None


def _error_text(result: dict) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        return f"{text} ({cause.get('reason')})" if isinstance(cause, dict) and cause.get("reason") else text
    return str(error)


class Shipper:
    def __init__(self, client: BulkClient | Any, spool: Spool, metrics: AgentMetrics, namespace: str, *,
                 batch_lines: int = 2000, batch_bytes: int = BATCH_BYTES, interval: float = 1.0,
                 backoff_max: float = CAP, queue_batches: int = 8, item_attempts: int = ITEM_ATTEMPTS,
                 dead_letters: DeadLetters | None = None) -> None:
        problem = namespace_problem(namespace)
        if problem:
            raise ValueError(f"namespace {namespace!r}: {problem}")
        self.client = client
        self.spool = spool
        self.metrics = metrics
        self.prefix = index_prefix(namespace).encode()
        self.batch_lines = batch_lines
        self.batch_bytes = batch_bytes
        self.interval = interval
        self.backoff_max = backoff_max
        self.item_attempts = item_attempts
        self.dead_letters = dead_letters or DeadLetters(spool.directory, DEAD_LETTER_BYTES, metrics)
        self.online = True
        self.template_ready = False
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._batch_lock = threading.Lock()
        self._queue: queue.Queue[list[bytes]] = queue.Queue(maxsize=queue_batches)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)

    # -- log thread ------------------------------------------------------------------------------
    def add(self, day: str, doc: bytes) -> None:
        entry = b"%s%s\t%s\n" % (self.prefix, day.encode(), doc)
        with self._batch_lock:
            self._batch.append(entry)
            self._batch_size += len(entry) + len(_ACTION)  # what it adds to the _bulk body, within 3 bytes
            if len(self._batch) < self.batch_lines and self._batch_size < self.batch_bytes:
                return
            batch, self._batch, self._batch_size = self._batch, [], 0
        self._hand_over(batch)

    def _hand_over(self, batch: list[bytes]) -> None:
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self._to_spool(batch)

    def _take_partial(self) -> list[bytes]:
        with self._batch_lock:
            batch, self._batch, self._batch_size = self._batch, [], 0
        return batch

    # -- shipper thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        retry = Backoff(OPENSEARCH, self.backoff_max)
        template_retry = Backoff(OPENSEARCH, self.backoff_max)
        next_flush = time.monotonic() + self.interval
        next_try = next_template = 0.0
        while not self._stop.is_set():
            if not self.template_ready and time.monotonic() >= next_template:
                if self._install_template():
                    template_retry.reset()
                else:
                    next_template = time.monotonic() + template_retry.pause()
            wake = next_flush
            if self.spool and self.template_ready:
                wake = min(wake, next_try)
            if not self.template_ready:
                wake = min(wake, next_template)
            try:
                batch = self._queue.get(timeout=max(0.0, wake - time.monotonic()))
            except queue.Empty:
                batch = []
            now = time.monotonic()
            if now >= next_flush:
                batch += self._take_partial()
                next_flush = now + self.interval
            if batch:
                if self.spool or not self.online or not self.template_ready:
                    self._to_spool(batch)  # keep order: older lines are waiting on disk
                else:
                    sent = self._ship_all(batch)
                    if sent is not Sent.DONE:
                        self.online = sent is Sent.AGAIN
                        next_try = now + retry.pause()
            if self.template_ready and self.spool and time.monotonic() >= next_try:
                drained = self._drain()
                self.online = drained is not Sent.NOT_NOW
                if drained is Sent.DONE:
                    next_try = 0.0
                    retry.reset()
                else:  # jittered: the agents of every node do not come back at once
                    next_try = time.monotonic() + retry.pause()

    def _install_template(self) -> bool:
        try:
            put = self.client.ensure_template(TEMPLATE_NAME, LOGS_TEMPLATE)
        except Exception as exc:  # unreachable, throttled, refused: logs wait in the spool meanwhile
            log.warning("OpenSearch: the %s index template is not installed yet (%s); logs wait in the spool",
                        TEMPLATE_NAME, exc)
            self.online = False
            return False
        self.template_ready = self.online = True
        if put:
            log.info("OpenSearch: installed the %s index template", TEMPLATE_NAME)
        return True

    def _chunks(self, entries: list[bytes]) -> Iterator[list[bytes]]:
        """Consecutive requests of at most batch_lines lines and batch_bytes of body (a line
        larger than that goes alone)."""
        chunk: list[bytes] = []
        size = 0
        for entry in entries:
            cost = len(entry) + len(_ACTION)
            if chunk and (len(chunk) >= self.batch_lines or size + cost > self.batch_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(entry)
            size += cost
        if chunk:
            yield chunk

    def _ship_all(self, batch: list[bytes]) -> Sent:
        outcome = Sent.DONE
        chunks = list(self._chunks(batch))
        for n, chunk in enumerate(chunks):
            sent = self._ship(chunk)
            if sent is Sent.NOT_NOW:
                for rest in chunks[n:]:
                    self._to_spool(rest)
                return Sent.NOT_NOW
            if sent is Sent.AGAIN:
                outcome = Sent.AGAIN
        return outcome

    def _drain(self, max_seconds: float = 2.0) -> Sent:
        """Ship spooled lines, oldest first, for a while; stops at the first request that was
        not all done (NOT_NOW: nothing of it consumed; AGAIN: some lines went back)."""
        deadline = time.monotonic() + max_seconds
        try:
            while self.spool and time.monotonic() < deadline and not self._stop.is_set():
                oldest = self.spool.oldest()
                if oldest is None:
                    break
                segment, entries = oldest
                if not entries:
                    self.spool.consumed(segment, 0)
                    continue
                for chunk in self._chunks(entries):
                    sent = self._ship(chunk)
                    if sent is Sent.NOT_NOW:
                        return sent
                    self.spool.consumed(segment, len(chunk))
                    if sent is Sent.AGAIN:
                        return sent
            return Sent.DONE
        finally:
            self.metrics.spool_bytes.set(self.spool.bytes)

    def _ship(self, entries: list[bytes]) -> Sent:
        """One _bulk request of spool lines (split further if OpenSearch refuses it whole)."""
        lines, malformed = [], []
        for entry in entries:
            parsed = split_entry(entry)
            if parsed is None:
                malformed.append((b"", entry, None, "not <index>\\t<document>\\n"))
            else:
                lines.append(parsed)
        self.dead_letters.add("malformed", malformed)
        return self._send(lines) if lines else Sent.DONE

    def _send(self, lines: list[tuple[bytes, int, bytes]]) -> Sent:
        body = bytearray()
        for index, _, doc in lines:
            body += _ACTION % index
            body += doc
        try:
            result = self.client.bulk(bytes(body))
        except Exception as exc:  # connection refused, timeout, an HTTP error status
            self.metrics.ship_failures.inc()
            status = _status(exc)
            if status is None or status in _NOT_NOW:
                if self.online:
                    hint = " (is the domain IAM-protected? --opensearch-sigv4)" if status in (401, 403) else ""
                    log.warning("OpenSearch unavailable (%s)%s; spooling logs", exc, hint)
                return Sent.NOT_NOW
            return self._halve(lines, status, exc)
        return self._items(lines, result)

    def _halve(self, lines: list[tuple[bytes, int, bytes]], status: int, exc: Exception) -> Sent:
        """OpenSearch refused the request whole (413: too large; 400: a line it cannot parse):
        each half on its own, down to the line it refuses alone, which is dead-lettered."""
        if len(lines) == 1:
            index, _, doc = lines[0]
            self.dead_letters.add("too_large" if status == 413 else "bad_request", [(index, doc, status, str(exc))])
            return Sent.DONE
        half = len(lines) // 2
        first = self._send(lines[:half])
        if first is Sent.NOT_NOW:
            return first
        second = self._send(lines[half:])
        if second is Sent.NOT_NOW:  # the first half is sent again with the rest: at-least-once
            return second
        return Sent.AGAIN if Sent.AGAIN in (first, second) else Sent.DONE

    def _items(self, lines: list[tuple[bytes, int, bytes]], result: dict) -> Sent:
        items = result.get("items", []) if result.get("errors") else []
        again: list[bytes] = []
        exhausted, refused = [], []
        throttled = 0
        for (index, attempts, doc), item in zip(lines, items):
            outcome = next(iter(item.values()))
            status = outcome.get("status", 200)
            if status < 300:
                continue
            if status in (403, 429):  # pushed back (429), or a write block (403: disk flood stage): no attempt counted
                throttled += 1
                again.append(join_entry(index, attempts, doc))
            elif status in _ITEM_FAILING and attempts + 1 < self.item_attempts:
                again.append(join_entry(index, attempts + 1, doc))
            elif status in _ITEM_FAILING:
                exhausted.append((index, doc, status, _error_text(outcome)))
            else:
                refused.append((index, doc, status, _error_text(outcome)))
        if throttled == len(lines):  # every item 429/403: OpenSearch takes nothing now, keep the lines
            self.metrics.ship_failures.inc()
            return Sent.NOT_NOW
        self.metrics.lines_shipped.inc(len(lines) - len(again) - len(exhausted) - len(refused))
        self.dead_letters.add("refused", refused)
        self.dead_letters.add("retries_exhausted", exhausted)
        if again:
            self._to_spool(again)
            return Sent.AGAIN
        return Sent.DONE

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
