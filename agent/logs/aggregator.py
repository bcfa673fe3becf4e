"""Per-window request metrics per gateway and per route, posted as Vamp events.

Percentiles come from a fixed log-linear histogram of Tt (ms), so memory per series is bounded
by the number of buckets actually hit (at most ~900) whatever the traffic:
  - values 0..63 ms have a bucket each: exact;
  - above, each power of two is split in 32 buckets and a bucket reports its midpoint:
    relative error at most 1/64 (~1.6%) of the true value.
A percentile is the nearest-rank value (the smallest v with at least p% of values <= v).
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

_EXACT = 64  # below this every millisecond has its own bucket
_SUB = 32  # buckets per power of two above it


def bucket_of(v: int) -> int:
    if v < _EXACT:
        return v
    shift = v.bit_length() - 6  # leaves the top 6 bits: 32..63
    return _EXACT + (shift - 1) * _SUB + ((v >> shift) - _SUB)


def bucket_value(index: int) -> float:
    """Midpoint of a bucket's range (its only value below _EXACT)."""
    if index < _EXACT:
        return float(index)
    shift, sub = divmod(index - _EXACT, _SUB)
    shift += 1
    low = (sub + _SUB) << shift
    return low + ((1 << shift) - 1) / 2


class Series:
    __slots__ = ("requests", "errors", "tt_sum", "tt_count", "hist")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.tt_sum = 0
        self.tt_count = 0
        self.hist: dict[int, int] = {}

    def merge(self, other: "Series") -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.tt_sum += other.tt_sum
        self.tt_count += other.tt_count
        for k, v in other.hist.items():
            self.hist[k] = self.hist.get(k, 0) + v

    def histogram(self) -> list[list[float]]:
        """The window's latencies, compact: [[bucket value in ms, count], ...] for the buckets hit,
        in order (exact below 64 ms, else each bucket's midpoint, within 1/64 of the truth)."""
        return [[bucket_value(i), n] for i, n in sorted(self.hist.items())]

    def percentile(self, p: float) -> float | None:
        if not self.tt_count:
            return None
        rank = max(1, -(-self.tt_count * p // 100))  # ceil without floats going astray
        seen = 0
        for index in sorted(self.hist):
            seen += self.hist[index]
            if seen >= rank:
                return bucket_value(index)
        return None


class Aggregator:
    """add() on the log thread, flush() on a timer thread; a lock guards the window swap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str | None], Series] = {}
        self._started = time.monotonic()

    def add(self, gateway: str | None, route: str | None, status: int, tt: int) -> None:
        if gateway is None:
            return  # not one of ours (foreign proxy names): shipped, not summarised
        with self._lock:
            s = self._series.get((gateway, route))
            if s is None:
                s = self._series[(gateway, route)] = Series()
            s.requests += 1
            if 500 <= status <= 599:
                s.errors += 1
            if tt >= 0:
                s.tt_sum += tt
                s.tt_count += 1
                b = tt if tt < _EXACT else bucket_of(tt)
                s.hist[b] = s.hist.get(b, 0) + 1

    def flush(self, now: float | None = None) -> tuple[dict[tuple[str, str | None], Series], float]:
        """Take the window: (series by (gateway, route), its length in seconds)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            series, self._series = self._series, {}
            started, self._started = self._started, now
        return series, max(now - started, 1e-9)


METRICS = ("requests", "errors", "rate", "p50", "p95", "p99", "responseTime")


def to_events(series: dict[tuple[str, str | None], Series], seconds: float,
              timestamp: datetime | None = None) -> list[dict[str, Any]]:
    """Vamp events for one window: gateway level (all its routes) and route level."""
    stamp = (timestamp or datetime.now(timezone.utc)).isoformat()
    gateways: dict[str, Series] = {}
    for (gateway, _route), s in series.items():
        gateways.setdefault(gateway, Series()).merge(s)
    events: list[dict[str, Any]] = []
    targets = [((g,), s) for g, s in sorted(gateways.items())]
    targets += [((g, r), s) for (g, r), s in sorted(series.items(), key=lambda i: (i[0][0], i[0][1] or ""))
                if r is not None]
    for names, s in targets:
        tags = [f"gateways:{names[0]}"] + ([f"routes:{names[1]}"] if len(names) == 2 else [])
        values: dict[str, float | None] = {
            "requests": s.requests,
            "errors": s.errors,
            "rate": round(s.requests / seconds, 3),
            "p50": s.percentile(50),
            "p95": s.percentile(95),
            "p99": s.percentile(99),
            "responseTime": round(s.tt_sum / s.tt_count, 3) if s.tt_count else None,
        }
        for metric in METRICS:
            if values[metric] is not None:
                events.append({"tags": tags + [f"metrics:{metric}"], "type": "metrics",
                               "value": values[metric], "timestamp": stamp})
        if len(names) == 2 and s.hist:  # the release judge's latency samples (chalicelib/releases/judges.py)
            events.append({"tags": tags + ["metrics:histogram"], "type": "metrics",
                           "value": s.histogram(), "timestamp": stamp})
    return events
