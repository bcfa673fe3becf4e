"""A bounded on-disk spool of log documents waiting for OpenSearch.

Append-only segment files (`seg-<n>.ndjson`, one `<index>\t<document>` per line), oldest first.
When an append would pass the bound, whole oldest segments are deleted and their lines counted
as dropped: the newest logs are kept, and nothing is lost before the spool is full. Segments
are ~1/16 of the bound, so a drop loses at most that much at once. Lines are written with
write(2), not fsync'd: they survive an agent crash, not a node crash.

Thread-safe: the shipper drains while the log thread may spill into it.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

log = logging.getLogger("agent.spool")


@dataclass
class Segment:
    path: Path
    size: int = 0
    lines: int = 0
    consumed: int = 0  # lines already shipped from its head (kept in memory only)


class Spool:
    def __init__(self, directory: Path, max_bytes: int, on_drop: Callable[[int], None] | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = max(4096, max_bytes // 16)
        self.on_drop = on_drop
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._writer: BinaryIO | None = None  # open on the newest segment
        self._next = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    def _recover(self) -> None:
        """Pick up segments left by a previous run, oldest first."""
        for path in sorted(self.directory.glob("seg-*.ndjson")):
            data = path.read_bytes()
            self._segments.append(Segment(path, len(data), data.count(b"\n")))
            self._next = max(self._next, int(path.stem[4:]) + 1)

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def lines(self) -> int:
        return sum(s.lines - s.consumed for s in self._segments)

    def __bool__(self) -> bool:
        return bool(self._segments)

    def append(self, entries: list[bytes]) -> int:
        """Add entries (each `<index>\t<doc>\n`); returns how many were kept."""
        data = b"".join(entries)
        kept = len(entries)
        if len(data) > self.max_bytes:  # a batch larger than the whole spool: keep its tail
            while entries and len(data) > self.max_bytes:
                data = data[len(entries[0]):]
                entries = entries[1:]
            self._dropped(kept - len(entries))
            kept = len(entries)
        with self._lock:
            total = sum(s.size for s in self._segments)
            while self._segments and total + len(data) > self.max_bytes:
                oldest = self._segments.popleft()
                if self._writer and not self._segments:
                    self._writer.close()
                    self._writer = None
                oldest.path.unlink(missing_ok=True)
                total -= oldest.size
                self._dropped(oldest.lines - oldest.consumed)
            if not data:
                return 0
            if self._writer is None or self._segments[-1].size >= self.segment_bytes:
                self._open_segment()
            assert self._writer is not None
            self._writer.write(data)
            self._writer.flush()
            seg = self._segments[-1]
            seg.size += len(data)
            seg.lines += kept
        return kept

    def _open_segment(self) -> None:
        if self._writer:
            self._writer.close()
        path = self.directory / f"seg-{self._next:012d}.ndjson"
        self._next += 1
        self._writer = open(path, "ab")
        self._segments.append(Segment(path))

    def _dropped(self, count: int) -> None:
        if count > 0:
            log.warning("spool full: dropped %d oldest log lines", count)
            if self.on_drop:
                self.on_drop(count)

    def oldest(self) -> tuple[Segment, list[bytes]] | None:
        """The oldest segment and its unshipped entries; the open segment is sealed first so it
        does not grow while it is being shipped."""
        with self._lock:
            if not self._segments:
                return None
            seg = self._segments[0]
            if len(self._segments) == 1 and self._writer is not None:
                self._writer.close()
                self._writer = None
        with open(seg.path, "rb") as f:
            entries = f.read().splitlines(keepends=True)
        return seg, entries[seg.consumed:]

    def consumed(self, seg: Segment, count: int) -> None:
        """`count` more lines from the head of seg are shipped; delete it once all are."""
        with self._lock:
            seg.consumed += count
            if seg.consumed >= seg.lines and self._segments and self._segments[0] is seg \
                    and not (len(self._segments) == 1 and self._writer is not None):
                self._segments.popleft()
                seg.path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._writer:
                self._writer.close()
                self._writer = None
