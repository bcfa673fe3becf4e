"""EventBridge locally: what is put on moto's default bus reaches app.py's `@app.on_cw_event`
handlers whose event pattern matches, in this process, as on AWS each such handler's rule
invokes its function (decision 0041).

moto stores rules and takes PutEvents but delivers only to the few targets it emulates (SQS,
logs, archives), never to Lambda code. `install()` wraps moto's events backend `put_events`:
moto answers as before, then every entry it accepted on a bus in `BUSES` becomes the event
EventBridge would send (version, id, detail-type, source, account, time, region, resources,
detail) and is handed to each matching handler on a thread of its own (EventBridge invokes
asynchronously; an entry's handlers run one after the other). Matching is moto's own
EventPattern (prefix, suffix, anything-but, numeric, exists, wildcard, cidr, $or), so a
pattern the local stack accepts is matched as moto matches a rule's. Whoever puts the events
- the app, a test, `aws events put-events --endpoint-url` against the local stack - the same.

Tests observe deliveries through `deliveries` and wait for them with `drain()`.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable

log = logging.getLogger("vamp.local.eventbridge")

BUSES = {"default"}  # the buses chalice's on_cw_event rules are on
deliveries: Counter = Counter()  # handler name -> events delivered
delivered: list[tuple[str, dict]] = []  # (handler name, event), in delivery order
_threads: list[threading.Thread] = []
_lock = threading.Lock()
_installed = False


def handlers() -> list[tuple[str, dict, Callable]]:
    """(name, event pattern, handler) of every on_cw_event of app.py."""
    import importlib

    import app

    found = []
    for source in app.app.event_sources:
        if type(source).__name__ != "CloudWatchEventConfig":
            continue
        module_name, _, attribute = source.handler_string.rpartition(".")
        found.append((source.name, source.event_pattern, getattr(importlib.import_module(module_name), attribute)))
    return found


def matches(pattern: dict, event: dict) -> bool:
    from moto.events.models import EventPattern

    return EventPattern.load(json.dumps(pattern)).matches_event(event)


def _time(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(entry: dict, event_id: str, account: str, region: str) -> dict:
    """The event EventBridge sends a rule's target for a PutEvents entry."""
    return {
        "version": "0", "id": event_id, "detail-type": entry["DetailType"], "source": entry["Source"],
        "account": account, "time": _time(entry.get("Time")), "region": region,
        "resources": list(entry.get("Resources") or []), "detail": json.loads(entry["Detail"]),
    }


def deliver(event: dict) -> list[str]:
    """Run every matching handler on `event` (in this thread); returns their names."""
    ran = []
    for name, pattern, handler in handlers():
        if not matches(pattern, event):
            continue
        with _lock:
            deliveries[name] += 1
            delivered.append((name, event))
        ran.append(name)
        try:
            handler(event, SimpleNamespace(function_name=name, aws_request_id="local"))
        except Exception:  # as Lambda: the failure is the function's, logged; EventBridge does not fail
            log.exception("on_cw_event %s failed on %s/%s", name, event.get("source"), event.get("detail-type"))
    return ran


def _bus_of(name: str | None) -> str:
    if not name:
        return "default"
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def install() -> None:
    """Wrap moto's events backend (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.events.models import EventsBackend

        original = EventsBackend.put_events

        def put_events(self, events):
            answers = original(self, events)
            for entry, answer in zip(events, answers):
                if "EventId" not in answer or _bus_of(entry.get("EventBusName")) not in BUSES:
                    continue
                event = envelope(entry, answer["EventId"], self.account_id, self.region_name)
                thread = threading.Thread(target=deliver, args=(event,), name="eventbridge-delivery", daemon=True)
                with _lock:
                    _threads[:] = [t for t in _threads if t.is_alive()]
                    _threads.append(thread)
                thread.start()
            return answers

        EventsBackend.put_events = put_events
        _installed = True


LOCAL_BUS = "vamp-local-events"


def setup(endpoint: str) -> str:
    """Deliveries on, and the stack's own bus (VAMP_EVENT_BUS, created unless it exists);
    returns the bus's name."""
    import os

    import boto3

    from chalicelib.settings import settings

    install()
    name = os.environ.setdefault("VAMP_EVENT_BUS", LOCAL_BUS)
    client = boto3.client("events", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    if not any(b["Name"] == name for b in client.list_event_buses().get("EventBuses", [])):
        client.create_event_bus(Name=name)
    settings.cache_clear()
    return name


def drain(timeout: float = 30.0) -> None:
    """Wait for the deliveries under way (tests)."""
    with _lock:
        running = list(_threads)
    for thread in running:
        thread.join(timeout)


def reset() -> None:
    drain()
    with _lock:
        deliveries.clear()
        delivered.clear()
