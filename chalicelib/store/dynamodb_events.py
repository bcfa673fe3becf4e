"""Events in their own DynamoDB table (the default backend; layout in table.py's docstring).

Each event is written once per expanded tag (`<ns>#event-tag#<tag>`) and once under
`<ns>#events`, sort key `<timestamp>#<id>`, so a query reads ONE partition, newest first, with
the time range as a key condition. The whole event is kept as JSON text in `doc` (no Decimal
round trip); `tags` and `type` are kept as attributes for the FilterExpression.

Cost: a query reads every item of the chosen partition inside its time range (the other tags
and the type only filter what was read), because the API returns the total count. Read units
grow with the events of the first tag in the range, not with the page; narrow the time range
or put the most selective tag first. Scan is never used.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Iterator

from chalicelib.errors import ValidationFailed
from chalicelib.retry import THROTTLED
from chalicelib.settings import settings
from chalicelib.store import table
from chalicelib.store.event_store import (
    Accumulator,
    Aggregator,
    EventPage,
    EventQuery,
    EventStoreUnavailable,
    normalized,
    parse_timestamp,
    sk_bounds,
    sort_key,
)

_BATCH = 25  # BatchWriteItem's limit
_MAX_DOC = 380_000  # bytes of JSON per event: a DynamoDB item holds 400 KB with its keys


def _pk(namespace: str, tag: str | None) -> str:
    return table.events_pk(namespace) if tag is None else table.event_tag_pk(namespace, tag)


class DynamoDBEventStore:
    def __init__(self, table_name: str | None = None):
        self._table = table_name

    @property
    def table(self) -> str:
        return self._table or table.events_table_name()

    # --- writes ---------------------------------------------------------------------------

    def publish(self, namespace: str, events: list[dict]) -> None:
        items: dict[tuple[str, str], dict] = {}  # keyed: a batch must not hold one key twice
        for i, event in enumerate(events):
            for item in self._items(namespace, normalized(event)):
                if len(item["doc"]["S"].encode()) > _MAX_DOC:  # checked before any write: all or none
                    raise ValidationFailed.at(f"events[{i}].value", f"an event must be under {_MAX_DOC} bytes of JSON")
                items[(item["pk"]["S"], item["sk"]["S"])] = item
        puts = [{"PutRequest": {"Item": item}} for item in items.values()]
        for start in range(0, len(puts), _BATCH):
            self._write(puts[start : start + _BATCH])

    def _items(self, namespace: str, event: dict) -> Iterator[dict]:
        common = {
            "sk": {"S": sort_key(event)},
            "id": {"S": event["id"]},
            "type": {"S": event["type"]},
            "tags": {"L": [{"S": t} for t in event["tags"]]},
            "doc": {"S": json.dumps(event, separators=(",", ":"))},
        }
        days = settings().event_retention_days
        if days > 0:
            expires = parse_timestamp(event["timestamp"]) + timedelta(days=days)
            common["expires_at"] = {"N": str(int(expires.timestamp()))}
        for tag in [None, *event["tags"]]:
            yield {"pk": {"S": _pk(namespace, tag)}, **common}

    def _write(self, requests: list[dict]) -> None:
        pending = {self.table: requests}
        for _ in THROTTLED.attempts_iter():  # throttled: back off before sending the leftovers
            pending = table.client().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
        raise EventStoreUnavailable("event store throttled: events not all written")

    # --- reads ----------------------------------------------------------------------------

    def query(self, namespace: str, q: EventQuery) -> EventPage:
        first = (q.page - 1) * q.per_page
        page = EventPage()
        for i, event in enumerate(self._matching(namespace, q)):
            if first <= i < first + q.per_page:
                page.items.append(event)
            page.total = i + 1  # counting on: the API reports the total
        return page

    def aggregate(self, namespace: str, q: EventQuery, agg: Aggregator) -> float | int | None:
        acc = Accumulator(agg)
        for event in self._matching(namespace, q):
            acc.add(event.get("value"))
        return acc.result()

    def _matching(self, namespace: str, q: EventQuery) -> Iterator[dict]:
        """Every event matching q's filters, newest first, paging one partition's Query."""
        bounds = sk_bounds(q)
        if bounds is None:
            return
        tag, *others = q.tags or [None]
        names = {"#pk": "pk", "#doc": "doc"}
        values: dict[str, dict] = {":pk": {"S": _pk(namespace, tag)}}
        key = "#pk = :pk"
        low, high = bounds
        if low is not None or high is not None:
            names["#sk"] = "sk"
            if low is not None:
                values[":low"] = {"S": low}
            if high is not None:
                values[":high"] = {"S": high}
            if low is not None and high is not None:
                key += " AND #sk BETWEEN :low AND :high"
            else:
                key += " AND #sk >= :low" if low is not None else " AND #sk <= :high"
        filters = []
        for i, other in enumerate(dict.fromkeys(others)):
            names["#tags"] = "tags"
            values[f":t{i}"] = {"S": other}
            filters.append(f"contains(#tags, :t{i})")
        if q.type is not None:
            names["#type"] = "type"
            values[":type"] = {"S": q.type}
            filters.append("#type = :type")
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "#doc",
            "ScanIndexForward": False,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        for item in table.query_items(**request):
            yield json.loads(item["doc"]["S"])
