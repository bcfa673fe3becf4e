"""Events in OpenSearch: daily indices `vamp-events-<namespace>-YYYY.MM.DD` (by event time).

A document is the event plus `namespace` (the index name folds case and odd characters, and
`vamp-events-a-*` also matches namespace `a-b`, so every search filters on it) and `numbers`:
each number found in `value`, keyed `value/<path with / for .>`, always mapped as double.
`value` itself is stored unindexed (`enabled: false`): one event's value may be a string and
the next one's an object, which a dynamic mapping would reject. Aggregations run on `numbers`.
The index template (EVENTS_TEMPLATE, the same as infra/opensearch/vamp-events.json) is put
once per process, before the first write, if the cluster does not have it yet.

When OpenSearch says no (docs/decisions/0028): a cluster unreachable, slow, throttling (429) or
failing (5xx), on any call, is EventStoreUnavailable (503, Retry-After). A publish is all or
nothing as far as a bulk allows: timestamps date_nanos cannot hold are refused before anything
is sent; items refused for now (429, 5xx) are sent again, a few times, with backoff (a 403
write block is a 503 at once); an item refused for good (mapper_parsing_exception, the
total-fields limit...) is a 400 naming the event and OpenSearch's reason. Whatever ends in an
error, the events of the batch already written are deleted again, so the caller may send the
whole batch again.
"""
from __future__ import annotations

import logging
import re
import weakref
from functools import lru_cache
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import boto3
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from chalicelib.dsl.event import EARLIEST, LATEST
from chalicelib.errors import FieldError, PayloadTooLarge, ValidationFailed
from chalicelib.retry import Backoff
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
    parse_timestamp,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "vamp-events"
MAX_WINDOW = 10_000  # index.max_result_window: from + size beyond it is refused by OpenSearch
_AGGS = {"min": "min", "max": "max", "average": "avg", "sum": "sum", "count": "value_count"}
# Statuses that say "not now": throttled (429), or the cluster failing or unreachable behind a proxy.
BUSY = frozenset({429, 500, 502, 503, 504})
# Items refused for now are sent again: inside a Lambda's time, so a few quick tries.
ITEM_RETRY = Backoff(attempts=4, base=0.05, cap=0.5)

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
    # Three tries of at most 5 s (502/503/504 and timeouts are retried; writes carry their ids, so
    # a retried bulk overwrites itself) end inside API Gateway's 29 s, as a 503 rather than its 504.
    return OpenSearch(hosts=[url], timeout=5, max_retries=2, retry_on_timeout=True, **kwargs)


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
        if not _call("checking the events index template", lambda: client.indices.exists_index_template(name=PREFIX)):
            _call("putting the events index template", lambda: client.indices.put_index_template(name=PREFIX, body=EVENTS_TEMPLATE))
        _TEMPLATE_READY.add(client)

    # --- writes ---------------------------------------------------------------------------

    def publish(self, namespace: str, events: list[dict]) -> None:
        if not events:
            return
        stored = [normalized(e) for e in events]
        for i, event in enumerate(stored):  # before anything is sent: the whole batch or none of it
            if not EARLIEST <= parse_timestamp(event["timestamp"]) <= LATEST:
                raise ValidationFailed.at(f"events[{i}].timestamp", f"between {EARLIEST.isoformat()} and "
                                          f"{LATEST.isoformat()}: what the event store's date_nanos holds")
        self.ensure_template()
        written: list[int] = []
        try:
            self._write_all(namespace, stored, written)
        except (ValidationFailed, EventStoreUnavailable, PayloadTooLarge) as error:
            if written:
                self._take_back(namespace, [stored[i] for i in written], error)
            raise

    def _write_all(self, namespace: str, stored: list[dict], written: list[int]) -> None:
        """Bulk-index the events, sending the items refused for now again; `written` collects
        the positions stored so far (for the caller to take back if this raises)."""
        pending = list(range(len(stored)))
        later: list[tuple[int, dict]] = []
        for _ in ITEM_RETRY.attempts_iter():
            lines: list[dict] = []
            for i in pending:
                lines.append({"index": {"_index": index_name(namespace, stored[i]["timestamp"]), "_id": stored[i]["id"]}})
                lines.append(to_document(namespace, stored[i]))
            response = _call("writing the events", lambda: self.client.bulk(
                body=lines, params={"refresh": str(self._refresh).lower()}))
            later, refused, blocked = [], [], []
            for i, item in zip(pending, response["items"]):
                result = next(iter(item.values()))
                status = result.get("status", 500)
                if status < 300:
                    written.append(i)
                elif status == 403:  # a write block (disk flood stage, an operator): not the event's fault
                    blocked.append((i, result))
                else:
                    (later if status in BUSY else refused).append((i, result))
            if blocked:
                raise EventStoreUnavailable("the event store does not take writes now; retry later",
                                            [FieldError(f"events[{i}]", _reason(r)) for i, r in blocked[:10]])
            if refused:
                raise ValidationFailed("The event store refused events",
                                       [FieldError(_refused_field(i, r), _reason(r)) for i, r in refused])
            if not later:
                return
            pending = [i for i, _ in later]
        raise EventStoreUnavailable(
            f"the event store refused {len(later)} of {len(stored)} events for now; retry later",
            [FieldError(f"events[{i}]", _reason(r)) for i, r in later[:10]], retry_after=2)

    def _take_back(self, namespace: str, events: list[dict], error: Exception) -> None:
        """Delete the events of a failed publish that were written (best effort: said if not)."""
        lines = [{"delete": {"_index": index_name(namespace, e["timestamp"]), "_id": e["id"]}} for e in events]
        try:
            response = self.client.bulk(body=lines, params={"refresh": str(self._refresh).lower()})
            failed = [i for i in response["items"] if next(iter(i.values())).get("status", 500) not in (200, 404)]
        except TransportError as e:
            failed, why = lines, str(e)
        else:
            why = "some deletes were refused"
        if failed:
            log.warning("event store: %d events of a failed publish could not be taken back: %s", len(failed), why)
            if isinstance(error, (ValidationFailed, EventStoreUnavailable)):
                error.errors.append(FieldError("events", f"{len(failed)} of the events written before the error may "
                                                         "remain stored (taking them back failed)"))

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
        return _call("reading events", lambda: self.client.search(
            index=index_pattern(namespace), body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"}
        ))


def _call(what: str, request: Callable[[], T]) -> T:
    """One request to OpenSearch; what says "not now" (unreachable, timed out, throttled, 5xx,
    or refusing our credentials) becomes EventStoreUnavailable, a body too large PayloadTooLarge.
    Anything else (a 400 to a request this module built) is a bug, and stays an error."""
    try:
        return request()
    except OpenSearchConnectionError as e:  # refused, reset, timed out (ConnectionTimeout), TLS
        raise EventStoreUnavailable(f"the event store is unreachable while {what}; retry later",
                                    [FieldError("backend", type(e).__name__)]) from e
    except TransportError as e:
        status = e.status_code if isinstance(e.status_code, int) else 0
        if status == 413:
            raise PayloadTooLarge("the events are too large for the event store in one request",
                                  [FieldError("body", "send fewer events per request")]) from e
        if status in BUSY or status in (401, 403):
            reason = f"{status} {e.error}" if status in BUSY else f"{status}: access refused (the role's es:ESHttp* permissions?)"
            raise EventStoreUnavailable(f"the event store did not answer while {what}; retry later",
                                        [FieldError("backend", reason)], retry_after=2 if status == 429 else 1) from e
        raise


def _reason(result: dict) -> str:
    error = result.get("error") or {}
    if not isinstance(error, dict):
        return str(error)
    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason += f" ({cause['reason']})"
    return reason


_PARSED_FIELD = re.compile(r"^failed to parse field \[([^\]]+)\]")


def _refused_field(i: int, result: dict) -> str:
    """The event's field OpenSearch refused, as the API names it: events[i].value for its
    numbers (and the total-fields limit they reach), events[i].<field>, else events[i]."""
    error = result.get("error") or {}
    reason = str(error.get("reason", "")) if isinstance(error, dict) else ""
    if reason.startswith("Limit of total fields"):
        return f"events[{i}].value"
    m = _PARSED_FIELD.match(reason)
    if m:
        top = m.group(1).split(".", 1)[0]
        return f"events[{i}].{'value' if top == 'numbers' else top}"
    return f"events[{i}]"
