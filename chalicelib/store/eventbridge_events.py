"""The control plane's own events on an EventBridge bus, beside the event store (decision 0041).

`BusForwardingEventStore` wraps the store event_backend chose: a batch is stored first, then
the events the control plane itself published (none an API token posted: telemetry and users'
events stay off the bus) whose tags name a kind below are put on VAMP_EVENT_BUS, in PutEvents
calls of at most 10 entries and 256 KB. The bus is a copy for notifications: a bus that is
away or refuses entries never fails the write; it is logged and counted (`failures`).

Every entry: `source` VAMP_EVENT_SOURCE, `detail-type` from the tags (DETAIL_TYPES),
`detail` {namespace, id, tags, type, value, timestamp}, `time` the event's timestamp.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterator

from chalicelib.settings import settings
from chalicelib.store.event_store import POSTED_BY, TIMESTAMP_FORMAT, EventPage, EventStore

log = logging.getLogger(__name__)

MAX_ENTRIES = 10  # PutEvents: entries per call
MAX_BYTES = 256 * 1024  # PutEvents: bytes per entry and per call, as EventBridge counts them
# Tag prefix -> the detail-type of an event carrying such a tag, first match wins:
#   release:<phase|check|...>   release phases and checks  (detail-type the tag: `release:check`)
#   synchronization:<kind>      deployment synchronisation (`synchronization:deployed`, ...)
#   sla:<escalate|deescalate>   SLA checks                 (`sla:escalate`)
#   escalation:<kind>           escalations applied        (`escalation:scale_instances`)
#   workflows:<name>            workflow runs and schedules (`workflows:<name>`)
#   publish-failed              a gateway configuration etcd did not take (`gateways:publish-failed`)
#   ecr:<started|refused>       what an image push started, or why not (automations/ecr.py)
#   alarm:<aborted|refused|idle|escalated|deescalated|waiting> what an alarm did (cloudwatch_alarms.py)
DETAIL_TYPES: tuple[tuple[str, str | None], ...] = (
    ("release:", None), ("synchronization:", None), ("sla:", None), ("escalation:", None),
    ("workflows:", None), ("publish-failed", "gateways:publish-failed"), ("ecr:", None), ("alarm:", None),
)

failures: Counter = Counter()  # reason -> events not put on the bus
_lock = threading.Lock()


def detail_type(event: dict) -> str | None:
    """The detail-type an event goes on the bus with; None: it stays off the bus."""
    if event.get(POSTED_BY) is not None:
        return None
    tags = [t for t in event.get("tags", ()) if isinstance(t, str)]
    for prefix, fixed in DETAIL_TYPES:
        for tag in tags:
            if tag == prefix or (prefix.endswith(":") and tag.startswith(prefix) and len(tag) > len(prefix)):
                return fixed or tag[:256]
    return None


def _size(entry: dict) -> int:
    """An entry's size as EventBridge counts it (Time 14 bytes, then the UTF-8 strings)."""
    return 14 + sum(len(entry.get(k, "").encode()) for k in ("Source", "DetailType", "Detail", "EventBusName")) + sum(
        len(r.encode()) for r in entry.get("Resources", ()))


def entry_of(namespace: str, event: dict, bus: str, source: str) -> dict | None:
    kind = detail_type(event)
    if kind is None:
        return None
    detail = {"namespace": namespace, **{k: event.get(k) for k in ("id", "tags", "type", "value", "timestamp")}}
    entry = {"Source": source, "DetailType": kind, "Detail": json.dumps(detail, separators=(",", ":")),
             "EventBusName": bus}
    try:
        entry["Time"] = datetime.strptime(event["timestamp"], TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    except (KeyError, TypeError, ValueError):
        pass
    if _size(entry) > MAX_BYTES:  # the value is what grows: the entry says it left it out
        detail = {**detail, "value": None, "truncated": True}
        entry["Detail"] = json.dumps(detail, separators=(",", ":"))
    return entry


def batches(entries: list[dict]) -> Iterator[list[dict]]:
    """Consecutive batches of at most MAX_ENTRIES entries and MAX_BYTES bytes."""
    batch: list[dict] = []
    size = 0
    for entry in entries:
        n = _size(entry)
        if batch and (len(batch) == MAX_ENTRIES or size + n > MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += n
    if batch:
        yield batch


@lru_cache(maxsize=None)
def _client(endpoint: str | None, region: str):
    """Its own client: short timeouts and one retry, so a bus that is away costs a write little."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=3)
    return boto3.client("events", region_name=region, endpoint_url=endpoint, config=config)


def _count(reason: str, n: int) -> None:
    with _lock:
        failures[reason] += n


def put(namespace: str, events: list[dict], bus: str | None = None, client=None) -> int:
    """Put the bus's share of `events`; returns how many entries the bus took. Never raises."""
    s = settings()
    bus = bus or s.event_bus
    if not bus:
        return 0
    try:
        entries = [e for e in (entry_of(namespace, ev, bus, s.event_source) for ev in events) if e is not None]
    except Exception:  # noqa: BLE001 - a value json cannot write: the store has the event anyway
        log.exception("events of %s not put on the bus %s", namespace, bus)
        _count("unserialisable", len(events))
        return 0
    taken = 0
    todo = list(batches(entries))
    for i, batch in enumerate(todo):
        try:
            answer = (client or _client(s.aws_endpoint, s.region)).put_events(Entries=batch)
        except Exception as e:  # noqa: BLE001 - the bus is a copy: never the write's failure
            # the bus is away or refuses the call: the rest of this write's batches are not tried
            left = sum(len(b) for b in todo[i:])
            log.warning("bus %s: %d events not put: %s", bus, left, e)
            _count(getattr(e, "response", {}).get("Error", {}).get("Code") or type(e).__name__, left)
            break
        failed = [r for r in answer.get("Entries", []) if r.get("ErrorCode")]
        for r in failed:
            _count(r["ErrorCode"], 1)
        if failed:
            log.warning("bus %s refused %d of %d events: %s", bus, len(failed), len(batch), failed[0].get("ErrorMessage"))
        taken += len(batch) - len(failed)
    return taken


class BusForwardingEventStore:
    """The chosen store, and the control plane's events also on the bus."""

    def __init__(self, inner: EventStore):
        self.inner = inner

    def publish(self, namespace: str, events: list[dict]) -> None:
        self.inner.publish(namespace, events)
        put(namespace, events)

    def query(self, namespace: str, q) -> EventPage:
        return self.inner.query(namespace, q)

    def aggregate(self, namespace: str, q, agg) -> Any:
        return self.inner.aggregate(namespace, q, agg)

    def __getattr__(self, name: str) -> Any:  # a backend's own helpers (streams, tests) pass through
        return getattr(self.inner, name)
