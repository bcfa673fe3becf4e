"""The event store interface, and the pure helpers every backend (and the event stream) shares.

An event is a plain dict, validated elsewhere:
    {"id": str, "tags": [str, ...], "value": any JSON, "timestamp": "2024-05-01T12:00:00.000000Z", "type": str}
and, for events posted through the API, "posted_by": {"name", "role"} (releases judge only the
telemetry agents posted, decision 0022).
Timestamps are stored in one fixed-width UTC form (microseconds, "Z"), so string order is time order.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Literal, Protocol

from pydantic import BaseModel, Field, model_validator

from chalicelib.dsl.event import EARLIEST, LATEST
from chalicelib.errors import Unavailable
from chalicelib.store.tokens import AGENT

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class EventQuery(BaseModel):
    tags: list[str] = []  # all must match (AND)
    type: str | None = None
    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None
    page: int = Field(1, ge=1)
    per_page: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _within_event_times(self) -> "EventQuery":
        """Bounds beyond the times an event can have (dsl/event.py) are moved onto them, so every
        backend answers alike and OpenSearch is never sent a date its date_nanos refuses: a lower
        bound before 1970 bounds nothing, nor an upper one after 2262; the others match nothing."""
        tightest: dict[str, datetime] = {}
        for op in ("gt", "gte", "lt", "lte"):
            if getattr(self, op) is not None:
                op_, bound = _onto_event_times(op, to_utc(getattr(self, op)))
                pick = max if op_ in ("gt", "gte") else min
                tightest[op_] = pick(tightest[op_], bound) if op_ in tightest else bound
        for op in ("gt", "gte", "lt", "lte"):
            setattr(self, op, tightest.get(op))
        return self


def _onto_event_times(op: str, bound: datetime) -> tuple[str, datetime]:
    if op in ("gt", "gte"):
        if bound < EARLIEST:
            return "gte", EARLIEST  # every event is at or after it
        return (op, bound) if bound <= LATEST else ("gt", LATEST)  # no event is after it
    if bound > LATEST:
        return "lte", LATEST
    return (op, bound) if bound >= EARLIEST else ("lt", EARLIEST)


class Aggregator(BaseModel):
    type: Literal["min", "max", "average", "sum", "count"]
    field: str | None = None  # dotted path into `value`; None: the value itself (count: each event)


@dataclass
class EventPage:
    items: list[dict] = field(default_factory=list)
    total: int = 0


class EventStoreUnavailable(Unavailable):
    """The backend refused or could not take the request (throttled, down): 503, Retry-After."""


class EventStore(Protocol):
    def publish(self, namespace: str, events: list[dict]) -> None:
        """Store a batch; ids, timestamps and tag expansion are already done (see new_event)."""

    def query(self, namespace: str, q: EventQuery) -> EventPage:
        """The page `q` asks for, newest first, and how many events match in all."""

    def aggregate(self, namespace: str, q: EventQuery, agg: Aggregator) -> float | int | None:
        """min/max/average/sum (float, None when no numbers) or count (int) over the matches."""


# --- events -------------------------------------------------------------------------------


def expand_tags(tags: Iterable[str]) -> list[str]:
    """Vamp stores a tag `a:b` also as `a`, so `a` finds it; duplicates dropped, order kept."""
    out: dict[str, None] = {}
    for tag in tags:
        out.setdefault(tag, None)
        if ":" in tag:
            out.setdefault(tag.split(":", 1)[0], None)
    return list(out)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit milliseconds + 80 random bits, 26 Crockford base32 chars; sorts by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


POSTED_BY = "posted_by"  # who posted an event through the API: {"name", "role"} of the token


def new_event(tags: Iterable[str], value: Any, type: str = "event", timestamp: datetime | str | None = None,
              posted_by: dict | None = None) -> dict:
    ts = parse_timestamp(timestamp) if timestamp is not None else datetime.now(timezone.utc)
    event = {
        "id": new_id(int(ts.timestamp() * 1000)),
        "tags": expand_tags(tags),
        "value": value,
        "timestamp": format_timestamp(ts),
        "type": type,
    }
    if posted_by is not None:
        event[POSTED_BY] = posted_by
    return event


def poster_role(event: dict) -> str | None:
    """The role of the token that posted `event` through the API (None: the control plane's
    own events, or events stored before posters were recorded)."""
    poster = event.get(POSTED_BY)
    return poster.get("role") if isinstance(poster, dict) else None


def from_agents(events: list[dict]) -> list[dict]:
    """The events an agent token posted: the only telemetry releases judge and gateway health
    counts (the API refuses telemetry from other tokens; this also drops what reached the store
    another way)."""
    return [e for e in events if poster_role(e) == AGENT]


# --- time ---------------------------------------------------------------------------------


def to_utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the API's default), aware ones converted."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def parse_timestamp(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return to_utc(value)
    return to_utc(datetime.fromisoformat(value.strip().replace("z", "Z")))


def format_timestamp(value: datetime | str) -> str:
    return parse_timestamp(value).strftime(TIMESTAMP_FORMAT)


def normalized(event: dict) -> dict:
    """The event as stored: canonical timestamp, tags expanded (idempotent, so safe to repeat)."""
    return {**event, "tags": expand_tags(event["tags"]), "timestamp": format_timestamp(event["timestamp"])}


def sort_key(event: dict) -> str:
    """Newest-first order is descending on this key, in every backend: timestamp, then id."""
    return f"{event['timestamp']}#{event['id']}"


def sk_bounds(q: EventQuery) -> tuple[str | None, str | None] | None:
    """Inclusive bounds on sort keys `<timestamp>#<id>` for q's time range; None if it is empty.

    "T#" sorts before every key of instant T and "T$" after all of them ('$' follows '#'),
    so strict and non-strict bounds both become inclusive ones that no real key equals.
    """
    lows = [f"{format_timestamp(q.gte)}#"] if q.gte else []
    lows += [f"{format_timestamp(q.gt)}$"] if q.gt else []
    highs = [f"{format_timestamp(q.lte)}$"] if q.lte else []
    highs += [f"{format_timestamp(q.lt)}#"] if q.lt else []
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)
    if low is not None and high is not None and low > high:
        return None
    return low, high


def matches(event: dict, q: EventQuery) -> bool:
    """Does a stored event match q's filters (not its page)? For in-memory filtering (streams)."""
    if q.type is not None and event.get("type") != q.type:
        return False
    if not set(q.tags) <= set(event.get("tags", ())):
        return False
    bounds = sk_bounds(q)
    if bounds is None:
        return False
    key, (low, high) = sort_key(event), bounds
    return (low is None or key >= low) and (high is None or key <= high)


# --- values and aggregation ---------------------------------------------------------------

def field_value(value: Any, path: str | None) -> Any:
    """The value at a dotted path into an event value (None if absent); None path: the value."""
    if not path:
        return value
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def numeric_leaves(value: Any, path: str = "") -> dict[str, float]:
    """Every number in a value (through objects, not lists) by dotted path; "" is the value itself."""
    if is_number(value):
        return {path: float(value)}
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for k, v in value.items():
            out.update(numeric_leaves(v, f"{path}.{k}" if path else str(k)))
        return out
    return {}


@dataclass
class Accumulator:
    """Folds events into one aggregate; numbers only (strings, bools, objects are skipped)."""

    agg: Aggregator
    count: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None

    def add(self, event_value: Any) -> None:
        x = field_value(event_value, self.agg.field)
        if self.agg.type == "count" and self.agg.field is None:
            self.count += 1
            return
        if not is_number(x):
            return
        x = float(x)
        self.count += 1
        self.total += x
        self.low = x if self.low is None else min(self.low, x)
        self.high = x if self.high is None else max(self.high, x)

    def result(self) -> float | int | None:
        kind = self.agg.type
        if kind == "count":
            return self.count
        if kind == "sum":
            return self.total
        if kind == "average":
            return self.total / self.count if self.count else None
        return self.low if kind == "min" else self.high
