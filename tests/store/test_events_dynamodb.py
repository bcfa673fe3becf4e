"""DynamoDB specifics: the item layout of table.py (in the events table), TTL, batching and retries, Query-only reads."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import retry
from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.store import table
from chalicelib.store.dynamodb_events import DynamoDBEventStore
from chalicelib.store.event_store import Aggregator, EventQuery, EventStoreUnavailable, new_event

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def item(pk: str, sk: str) -> dict | None:
    return table.client().get_item(TableName=table.events_table_name(), Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")


def test_one_item_per_expanded_tag_and_one_for_all_events(aws):
    event = new_event(["deployments:sava"], {"x": 1.5}, "metric", NOW)
    DynamoDBEventStore().publish("ns", [event])
    sk = f"{event['timestamp']}#{event['id']}"
    for pk in ("ns#events", "ns#event-tag#deployments:sava", "ns#event-tag#deployments"):
        stored = item(pk, sk)
        assert stored is not None, pk
        assert json.loads(stored["doc"]["S"]) == event
        assert stored["type"]["S"] == "metric"
        assert int(stored["expires_at"]["N"]) == int((NOW + timedelta(days=30)).timestamp())


def test_no_expiry_when_retention_is_zero(aws, monkeypatch):
    monkeypatch.setenv("VAMP_EVENT_RETENTION_DAYS", "0")
    settings.cache_clear()
    event = new_event(["a"], 1, timestamp=NOW)
    DynamoDBEventStore().publish("ns", [event])
    assert "expires_at" not in item("ns#events", f"{event['timestamp']}#{event['id']}")


def test_writes_go_in_batches_of_25(aws, no_scan):
    events = [new_event(["a", "b"], i, timestamp=NOW + timedelta(seconds=i)) for i in range(30)]
    DynamoDBEventStore().publish("ns", events)  # 30 x 3 items
    assert no_scan.count("BatchWriteItem") == 4
    assert DynamoDBEventStore().query("ns", EventQuery(tags=["b"])).total == 30


class Throttling:
    """Stands in for the client's BatchWriteItem: writes only the first request, hands the rest back."""

    def __init__(self, real, rounds: int):
        self.real, self.rounds, self.calls = real, rounds, 0

    def __call__(self, RequestItems):
        self.calls += 1
        if self.calls > self.rounds:
            return self.real(RequestItems=RequestItems)
        (name, requests), = RequestItems.items()
        self.real(RequestItems={name: requests[:1]})
        return {"UnprocessedItems": {name: requests[1:]} if requests[1:] else {}}


def throttled(monkeypatch, rounds: int) -> Throttling:
    ddb = table.client()
    throttling = Throttling(ddb.batch_write_item, rounds)
    monkeypatch.setattr(ddb, "batch_write_item", throttling)
    return throttling


def test_unprocessed_items_are_retried(aws, monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    throttling = throttled(monkeypatch, rounds=3)
    events = [new_event(["a"], i, timestamp=NOW + timedelta(seconds=i)) for i in range(5)]
    DynamoDBEventStore().publish("ns", events)
    assert throttling.calls == 4
    assert DynamoDBEventStore().query("ns", EventQuery(tags=["a"])).total == 5


def test_gives_up_when_throttled_for_good(aws, monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    throttled(monkeypatch, rounds=1000)
    with pytest.raises(EventStoreUnavailable) as e:
        DynamoDBEventStore().publish("ns", [new_event(["a"], i) for i in range(20)])
    assert e.value.status == 503


def test_a_query_reads_the_partition_of_its_first_tag(aws):
    seen: list[dict] = []
    table.client().meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: seen.append(params))
    DynamoDBEventStore().publish("ns", [new_event(["rare", "common"], 1, "metric", NOW)])
    store = DynamoDBEventStore()
    assert store.query("ns", EventQuery(tags=["rare", "common"], type="metric", gte=NOW)).total == 1
    (params,) = seen
    assert params["ExpressionAttributeValues"][":pk"] == {"S": "ns#event-tag#rare"}
    assert "BETWEEN" not in params["KeyConditionExpression"] and ":low" in params["KeyConditionExpression"]
    assert params["FilterExpression"] == "contains(#tags, :t0) AND #type = :type"
    assert params["ScanIndexForward"] is False
    seen.clear()
    assert store.query("ns", EventQuery()).total == 1
    assert seen[0]["ExpressionAttributeValues"][":pk"] == {"S": "ns#events"}
    assert store.query("ns", EventQuery(gt=NOW, lt=NOW)).total == 0  # an empty range costs no read
    assert len(seen) == 1


def test_queries_page_through_dynamodb_pages(aws, no_scan):
    big = "x" * 120_000  # DynamoDB pages a Query at 1 MB: 25 of these take three pages
    events = [new_event(["a"], {"n": i, "pad": big}, timestamp=NOW + timedelta(seconds=i)) for i in range(25)]
    store = DynamoDBEventStore()
    store.publish("ns", events)
    no_scan.clear()
    page = store.query("ns", EventQuery(tags=["a"], page=3, per_page=10))
    assert page.total == 25 and [e["value"]["n"] for e in page.items] == [4, 3, 2, 1, 0]
    assert no_scan.count("Query") >= 3
    assert store.aggregate("ns", EventQuery(tags=["a"]), Aggregator(type="sum", field="n")) == float(sum(range(25)))


def test_an_event_too_big_for_an_item_is_refused_before_anything_is_written(aws, no_scan):
    small, big = new_event(["a"], 1, timestamp=NOW), new_event(["a"], "x" * 400_000, timestamp=NOW)
    with pytest.raises(ValidationFailed) as e:
        DynamoDBEventStore().publish("ns", [small, big])
    assert e.value.errors[0].path == "events[1].value"
    assert "BatchWriteItem" not in no_scan
