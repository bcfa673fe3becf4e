"""Events in OpenSearch: daily indices `vamp-events-<namespace>-YYYY.MM.DD` (by event time).

A document is the event plus `namespace` (the index name folds case and odd characters, and
`vamp-events-a-*` also matches namespace `a-b`, so every search filters on it) and `numbers`:
each number found in `value`, keyed `value/<path with / for .>`, always mapped as double.
`value` itself is stored unindexed (`enabled: false`): one event's value may be a string and
the next one's an object, which a dynamic mapping would reject. Aggregations run on `numbers`.
The index template (EVENTS_TEMPLATE, the same as infra/opensearch/vamp-events.json) is put
once per process, before the first write, if the cluster does not have it yet.
"""
from __future__ import annotations

import re
import weakref
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import boto3
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth
from opensearchpy.exceptions import TransportError

from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.store.event_store import (
    POSTED_BY,
    Aggregator,
    EventPage,
    EventQuery,
    EventStoreUnavailable,
    format_timestamp,
    normalized,
    numeric_leaves,
)

PREFIX = "vamp-events"
MAX_WINDOW = 10_000  # index.max_result_window: from + size beyond it is refused by OpenSearch
_AGGS = {"min": "min", "max": "max", "average": "avg", "sum": "sum", "count": "value_count"}

EVENTS_TEMPLATE: dict = {
    "index_patterns": [f"{PREFIX}-*"],
    "priority": 100,
    "template": {
        "settings": {"index": {"number_of_shards": 1, "refresh_interval": "1s"}},
        "mappings": {
            "dynamic": False,
            "dynamic_templates": [
                {"numbers_as_double": {"path_match": "numbers.*", "mapping": {"type": "double"}}}
            ],
            "properties": {
                "id": {"type": "keyword"},
                "namespace": {"type": "keyword"},
                "tags": {"type": "keyword"},
                "type": {"type": "keyword"},
                "timestamp": {"type": "date_nanos"},
                "value": {"type": "object", "enabled": False},
                "numbers": {"type": "object", "dynamic": True},
            },
        },
    },
    "_meta": {"owner": "vamp-serverless", "about": "events: see chalicelib/store/opensearch_events.py"},
}


def index_name(namespace: str, timestamp: str) -> str:
    """Index names must be lowercase without / \\ * ? " < > | , # or spaces."""
    safe = re.sub(r"[^a-z0-9_.-]", "_", namespace.lower())
    return f"{PREFIX}-{safe}-{timestamp[:10].replace('-', '.')}"


def index_pattern(namespace: str) -> str:
    """Every daily index of a namespace (and of namespaces it prefixes: filter on `namespace`)."""
    return index_name(namespace, "") + "*"


def _number_key(path: str) -> str:
    """`value/a/b` for the number at `a.b` in value (`value` for the value itself): no dots."""
    return "/".join(["value", *(path.split(".") if path else [])])


def number_field(path: str | None) -> str:
    return "numbers." + _number_key(path or "")


def to_document(namespace: str, event: dict) -> dict:
    numbers = {_number_key(p): x for p, x in numeric_leaves(event.get("value")).items()}
    return {**event, "namespace": namespace, "numbers": numbers}


def from_document(doc: dict) -> dict:
    event = {k: doc.get(k) for k in ("id", "tags", "value", "timestamp", "type")}
    if POSTED_BY in doc:  # kept in _source, not indexed (the mapping is not dynamic)
        event[POSTED_BY] = doc[POSTED_BY]
    return event


def search_filter(namespace: str, q: EventQuery) -> dict:
    filters: list[dict] = [{"term": {"namespace": namespace}}]
    filters += [{"term": {"tags": tag}} for tag in dict.fromkeys(q.tags)]
    if q.type is not None:
        filters.append({"term": {"type": q.type}})
    bounds = {op: format_timestamp(getattr(q, op)) for op in ("gt", "gte", "lt", "lte") if getattr(q, op)}
    if bounds:
        filters.append({"range": {"timestamp": bounds}})
    return {"bool": {"filter": filters}}


@lru_cache(maxsize=4)  # one client (and connection pool) per URL for the life of the process
def _client_for(url: str):
    host = urlparse(url).hostname or ""
    kwargs: dict[str, Any] = {}
    if host.endswith((".es.amazonaws.com", ".aoss.amazonaws.com")):  # Amazon OpenSearch: SigV4
        service = "aoss" if host.endswith(".aoss.amazonaws.com") else "es"
        kwargs = {"http_auth": Urllib3AWSV4SignerAuth(boto3.Session().get_credentials(), settings().region, service)}
    return OpenSearch(hosts=[url], timeout=10, max_retries=2, retry_on_timeout=True, **kwargs)


_TEMPLATE_READY: "weakref.WeakSet[Any]" = weakref.WeakSet()  # clients known to have the template


class OpenSearchEventStore:
    def __init__(self, url: str | None = None, client: Any = None, refresh: bool | str = False):
        """`refresh`: passed to _bulk ("wait_for" makes a write visible before publish returns)."""
        self._url = url
        self._client = client
        self._refresh = refresh

    @property
    def client(self):
        if self._client is None:
            url = self._url or settings().opensearch_url
            if not url:
                raise EventStoreUnavailable("event store is opensearch but VAMP_OPENSEARCH_URL is not set")
            self._client = _client_for(url)
        return self._client

    def ensure_template(self) -> None:
        client = self.client
        if client in _TEMPLATE_READY:  # once per client: a HEAD per write would be waste
            return
        if not client.indices.exists_index_template(name=PREFIX):
            client.indices.put_index_template(name=PREFIX, body=EVENTS_TEMPLATE)
        _TEMPLATE_READY.add(client)

    # --- writes ---------------------------------------------------------------------------

    def publish(self, namespace: str, events: list[dict]) -> None:
        if not events:
            return

        self.ensure_template()
        lines: list[dict] = []
        for event in map(normalized, events):
            lines.append({"index": {"_index": index_name(namespace, event["timestamp"]), "_id": event["id"]}})
            lines.append(to_document(namespace, event))
        try:
            response = self.client.bulk(body=lines, params={"refresh": str(self._refresh).lower()})
        except TransportError as e:
            raise EventStoreUnavailable(f"event store refused the events: {e}") from e
        if response.get("errors"):
            failed = [i for item in response["items"] for i in item.values() if i.get("status", 500) >= 300]
            reason = failed[0].get("error") if failed else "unknown"
            raise EventStoreUnavailable(f"event store refused {len(failed)} of {len(events)} events: {reason}")

    # --- reads ----------------------------------------------------------------------------

    def query(self, namespace: str, q: EventQuery) -> EventPage:
        start = (q.page - 1) * q.per_page
        if start + q.per_page > MAX_WINDOW:
            raise ValidationFailed.at("page", f"page * per_page must not exceed {MAX_WINDOW}; narrow the query")
        body = {
            "query": search_filter(namespace, q),
            "sort": [
                {"timestamp": {"order": "desc", "unmapped_type": "date_nanos"}},
                {"id": {"order": "desc", "unmapped_type": "keyword"}},  # ties: as DynamoDB's sort key
            ],
            "from": start,
            "size": q.per_page,
            "track_total_hits": True,
        }
        hits = self._search(namespace, body)["hits"]
        return EventPage([from_document(h["_source"]) for h in hits["hits"]], hits["total"]["value"])

    def aggregate(self, namespace: str, q: EventQuery, agg: Aggregator) -> float | int | None:
        body: dict[str, Any] = {"query": search_filter(namespace, q), "size": 0, "track_total_hits": True}
        if agg.type == "count" and agg.field is None:
            return self._search(namespace, body)["hits"]["total"]["value"]
        body["aggs"] = {"result": {_AGGS[agg.type]: {"field": number_field(agg.field)}}}
        value = self._search(namespace, body)["aggregations"]["result"]["value"]
        if agg.type == "count":
            return int(value or 0)
        return None if value is None else float(value)

    def _search(self, namespace: str, body: dict) -> dict:
        # ignore_unavailable/allow_no_indices: a namespace without events yet is an empty result
        return self.client.search(
            index=index_pattern(namespace), body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"}
        )
