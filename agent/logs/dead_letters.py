"""Log lines OpenSearch refused for good, kept for an operator to read: never sent again.

`dead-letters.ndjson` in the spool directory, one JSON object a line: `at` (UTC), `reason` (the
counter's label: refused, too_large, bad_request, retries_exhausted, malformed), `status`,
`error` (OpenSearch's type and reason), `index` and `document` (the line as it was, as text).
Bounded: when the file would pass `max_bytes` it becomes `dead-letters.1.ndjson` (the previous
one is deleted), so at most twice `max_bytes` is kept. Every refusal is also a log line and
counts in vamp_agent_log_lines_dead_lettered_total{reason} (and log_lines_dropped_total).
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path

from agent.metrics import AgentMetrics

log = logging.getLogger("agent.shipper")

FILE = "dead-letters.ndjson"
ROTATED = "dead-letters.1.ndjson"
DOCUMENT_PREVIEW = 200  # characters of a refused document quoted in the log line


class DeadLetters:
    def __init__(self, directory: Path, max_bytes: int, metrics: AgentMetrics) -> None:
        self.path = directory / FILE
        self.rotated = directory / ROTATED
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, reason: str, refused: list[tuple[bytes, bytes, int | None, str]]) -> None:
        """`refused`: (index, document, status, OpenSearch's error) of lines it will never take."""
        if not refused:
            return
        at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = b""
        for index, doc, status, error in refused:  # whole records only, at most max_bytes of them
            record = json.dumps({
                "at": at, "reason": reason, "status": status, "error": error,
                "index": index.decode("utf-8", "replace"), "document": doc.decode("utf-8", "replace").rstrip("\n"),
            }).encode() + b"\n"
            if len(data) + len(record) > self.max_bytes:
                break
            data += record
        with self._lock:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(data) > self.max_bytes:
                self.path.replace(self.rotated)
            with open(self.path, "ab") as f:
                f.write(data)
        self.metrics.lines_dead_lettered.labels(reason=reason).inc(len(refused))
        self.metrics.lines_dropped.inc(len(refused))
        _, doc, status, error = refused[0]
        preview = doc.decode("utf-8", "replace")[:DOCUMENT_PREVIEW].rstrip("\n")
        log.warning("OpenSearch refused %d log line(s) for good (%s; the first: %s %s: %s); kept in %s",
                    len(refused), reason, status, error, preview, self.path)
