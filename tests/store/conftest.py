"""The store tests' own fixture: DynamoDB calls counted, and no Scan allowed."""
from __future__ import annotations

import pytest


@pytest.fixture()
def no_scan(aws):
    """Counts DynamoDB calls by operation; fails the test if a Scan was ever made."""
    from chalicelib.store import table

    calls: list[str] = []
    handler = lambda model, **_: calls.append(model.name)  # noqa: E731
    table.client().meta.events.register("before-call.dynamodb.*", handler)
    yield calls
    table.client().meta.events.unregister("before-call.dynamodb.*", handler)
    assert "Scan" not in calls
