"""The backends an API operation works on, built per call from the settings (cheap: clients are
cached by the store modules). One place, so routes never construct a store themselves."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

if TYPE_CHECKING:
    from chalicelib.store.artifact_store import ArtifactStore


def artifact_store() -> ArtifactStore:
    return DynamoDBArtifactStore()


def publish_events(namespace: str, events: list[dict]) -> None:
    # The event store's interface module imports pydantic (~80 ms): not at `import app` time.
    from chalicelib.store.events import event_store

    event_store().publish(namespace, events)
