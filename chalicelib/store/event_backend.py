"""Which event store backend serves: the one VAMP_EVENT_STORE names, DynamoDB (default) or
OpenSearch. Apart from the interface (event_store.py) because that module imports pydantic
(~80 ms), and importing this one must not (tests/store/test_events_helpers.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.settings import settings

if TYPE_CHECKING:
    from chalicelib.store.event_store import EventStore


def event_store() -> EventStore:
    store = _chosen()
    # --- automations (0041): the control plane's own events also on VAMP_EVENT_BUS ---
    if settings().event_bus:
        from chalicelib.store.eventbridge_events import BusForwardingEventStore

        return BusForwardingEventStore(store)
    return store


def _chosen() -> EventStore:
    # Only the chosen backend's module is imported (both import the interface's pydantic models,
    # OpenSearch also its client); both create their clients on first use and cache them.
    if settings().event_store == "opensearch":
        from chalicelib.store.opensearch_events import OpenSearchEventStore

        return OpenSearchEventStore()
    from chalicelib.store.dynamodb_events import DynamoDBEventStore

    return DynamoDBEventStore()
