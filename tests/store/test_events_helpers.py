"""The pure helpers of the event store and the factory: no server."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from chalicelib.settings import settings
from chalicelib.store.dynamodb_events import DynamoDBEventStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import (
    Accumulator,
    Aggregator,
    EventQuery,
    expand_tags,
    field_value,
    format_timestamp,
    matches,
    new_event,
    new_id,
    numeric_leaves,
    sk_bounds,
    sort_key,
)
from chalicelib.store.opensearch_events import OpenSearchEventStore

T = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_expand_tags_adds_prefixes_dedups_and_keeps_order():
    assert expand_tags(["deployments:sava", "clusters:sava", "deployments", "x", "a:b:c"]) == [
        "deployments:sava", "deployments", "clusters:sava", "clusters", "x", "a:b:c", "a",
    ]
    assert expand_tags(expand_tags(["a:b"])) == ["a:b", "a"]


def test_new_event_fills_id_timestamp_and_tags():
    e = new_event(["deployments:sava"], {"x": 1})
    assert set(e) == {"id", "tags", "value", "timestamp", "type"}
    assert e["tags"] == ["deployments:sava", "deployments"] and e["type"] == "event"
    assert len(e["timestamp"]) == 27 and e["timestamp"].endswith("Z")
    assert new_event(["a"], 1, "metric", "2024-05-01T14:00:00+02:00")["timestamp"] == "2024-05-01T12:00:00.000000Z"


def test_ids_sort_by_time():
    earlier, later = new_id(1_000), new_id(2_000)
    assert len(earlier) == 26 and earlier < later
    assert new_id() != new_id()
    assert new_event(["a"], 1, timestamp=T)["id"] < new_event(["a"], 1, timestamp=T + timedelta(milliseconds=1))["id"]


def test_timestamps_have_one_fixed_width_form():
    assert format_timestamp(T) == "2024-05-01T12:00:00.000000Z"
    assert format_timestamp(datetime(2024, 5, 1, 12)) == "2024-05-01T12:00:00.000000Z"  # naive: UTC
    assert format_timestamp("2024-05-01T12:00:00.5Z") == "2024-05-01T12:00:00.500000Z"
    assert format_timestamp("2024-05-01") == "2024-05-01T00:00:00.000000Z"


def test_sk_bounds_are_strict_or_not_as_asked():
    ts = format_timestamp(T)
    key = sort_key({"timestamp": ts, "id": "01ABC"})
    low, _ = sk_bounds(EventQuery(gte=T))
    assert key >= low
    low, _ = sk_bounds(EventQuery(gt=T))
    assert key < low
    _, high = sk_bounds(EventQuery(lte=T))
    assert key <= high
    _, high = sk_bounds(EventQuery(lt=T))
    assert key > high
    assert sk_bounds(EventQuery()) == (None, None)
    assert sk_bounds(EventQuery(gt=T, lt=T)) is None
    assert sk_bounds(EventQuery(gt=T, gte=T - timedelta(days=1))) == (f"{ts}$", None)  # the stricter


def test_matches_applies_every_filter():
    e = new_event(["deployments:sava", "x"], 1, "metric", T)
    assert matches(e, EventQuery(tags=["deployments", "x"], type="metric", gte=T, lte=T))
    assert not matches(e, EventQuery(tags=["deployments", "y"]))
    assert not matches(e, EventQuery(type="event"))
    assert not matches(e, EventQuery(gt=T))
    assert not matches(e, EventQuery(lt=T))


def test_values_by_path_and_their_numbers():
    v = {"a": {"b": 2, "c": "x", "d": [1, 2]}, "e": True, "f": 1.5}
    assert field_value(v, "a.b") == 2 and field_value(v, "a.z") is None and field_value(v, None) is v
    assert numeric_leaves(v) == {"a.b": 2.0, "f": 1.5}  # no bools, no lists
    assert numeric_leaves(7) == {"": 7.0}


@pytest.mark.parametrize("kind, expected", [("min", 1.0), ("max", 3.0), ("sum", 4.0), ("average", 2.0), ("count", 2)])
def test_accumulator(kind, expected):
    acc = Accumulator(Aggregator(type=kind, field="n"))
    for v in ({"n": 1}, {"n": 3}, {"n": "x"}, {"n": True}, "text"):
        acc.add(v)
    assert acc.result() == expected


def test_query_rejects_pages_below_one():
    with pytest.raises(ValidationError):
        EventQuery(page=0)
    with pytest.raises(ValidationError):
        EventQuery(per_page=0)
    with pytest.raises(ValidationError):
        Aggregator(type="median")


def test_factory_chooses_by_settings(monkeypatch):
    monkeypatch.delenv("VAMP_EVENT_STORE", raising=False)
    settings.cache_clear()
    assert isinstance(event_store(), DynamoDBEventStore)
    monkeypatch.setenv("VAMP_EVENT_STORE", "opensearch")
    settings.cache_clear()
    assert isinstance(event_store(), OpenSearchEventStore)
    settings.cache_clear()


def test_importing_the_factory_stays_light():
    import subprocess
    import sys

    # The factory is on every cold start; the backend it picks (pydantic, opensearch-py) is not.
    code = "import sys, chalicelib.store.event_backend as b; print(sorted({'pydantic', 'opensearchpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
