"""The event store the settings choose: DynamoDB (default) or OpenSearch."""
from __future__ import annotations

from chalicelib.settings import settings
from chalicelib.store.event_store import EventStore


def event_store() -> EventStore:
    # Cheap to build: both backends create their clients on first use (and cache them there).
    if settings().event_store == "opensearch":
        from chalicelib.store.opensearch_events import OpenSearchEventStore

        return OpenSearchEventStore()
    from chalicelib.store.dynamodb_events import DynamoDBEventStore

    return DynamoDBEventStore()
