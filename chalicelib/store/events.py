"""The event store the settings choose: DynamoDB (default) or OpenSearch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.settings import settings

if TYPE_CHECKING:  # the interface module imports pydantic (~80 ms): not at `import app` time
    from chalicelib.store.event_store import EventStore


def event_store() -> EventStore:
    # Cheap to build: both backends create their clients on first use (and cache them there).
    if settings().event_store == "opensearch":
        from chalicelib.store.opensearch_events import OpenSearchEventStore

        return OpenSearchEventStore()
    from chalicelib.store.dynamodb_events import DynamoDBEventStore

    return DynamoDBEventStore()
