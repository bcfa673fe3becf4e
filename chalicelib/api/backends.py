"""The backends an API operation works on, built per call from the settings (cheap: clients are
cached by the store modules). One place, so routes never construct a store themselves."""
from __future__ import annotations

from chalicelib.settings import settings
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.node_store import DynamoDBNodeStore, NodeStore
from chalicelib.store.tokens import DynamoDBTokenStore, TokenStore


def artifact_store() -> ArtifactStore:
    return DynamoDBArtifactStore()


def node_store() -> NodeStore:
    return DynamoDBNodeStore(settings().node_ttl)


def token_store() -> TokenStore:
    return DynamoDBTokenStore()


def publish_events(namespace: str, events: list[dict]) -> None:
    event_store().publish(namespace, events)
