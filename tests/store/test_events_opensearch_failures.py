"""The OpenSearch event store when OpenSearch says no: timestamps date_nanos cannot hold, per-item
bulk failures (permanent: a 400 naming the event; transient: retried, then a 503), and a cluster
that is down, slow or throttling on reads and on the template write (a 503, never a 500).
docs/decisions/0028-opensearch-failures-and-dead-letters.md."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import dsl
from chalicelib.api.http import error_reply
from chalicelib.errors import ValidationFailed
from chalicelib.store.dynamodb_events import DynamoDBEventStore
from chalicelib.store.event_store import Aggregator, EventQuery, EventStoreUnavailable, new_event
from chalicelib.store.opensearch_events import OpenSearchEventStore

NOW = datetime.now(timezone.utc).replace(microsecond=0)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=timezone.utc)


def store_for(fake) -> OpenSearchEventStore:  # type: ignore[no-untyped-def]
    return OpenSearchEventStore(url=fake.url, refresh="wait_for")


def bulks(fake) -> list[dict]:  # type: ignore[no-untyped-def]
    return [r for r in fake.requests if r["path"].endswith("_bulk")]


# --- 1. timestamps date_nanos cannot hold -----------------------------------------------------


@pytest.mark.parametrize("timestamp", ["1969-12-31T23:59:59.999999Z", "1900-01-01T00:00:00Z",
                                       "2262-04-11T23:47:16.854776Z", "9999-12-31T00:00:00Z"])
def test_an_event_time_date_nanos_cannot_hold_is_a_400_naming_the_field(timestamp):
    with pytest.raises(ValidationFailed) as e:
        dsl.parse_event({"tags": ["a"], "timestamp": timestamp})
    assert [x.path for x in e.value.errors] == ["timestamp"] and "1970" in e.value.errors[0].reason


@pytest.mark.parametrize("timestamp", ["1970-01-01T00:00:00Z", "2262-04-11T23:47:16.854775Z"])
def test_the_first_and_last_instants_date_nanos_holds_are_events(timestamp, fake_opensearch):
    event = dsl.parse_event({"tags": ["a"], "timestamp": timestamp})
    store = store_for(fake_opensearch)
    store.publish("ns", [new_event(["a"], 1, timestamp=event.timestamp)])
    assert store.query("ns", EventQuery(tags=["a"])).total == 1


def test_the_store_refuses_such_a_time_before_sending_anything(fake_opensearch):
    events = [new_event(["a"], 1, timestamp=NOW), new_event(["a"], 2, timestamp=datetime(1969, 7, 20, tzinfo=timezone.utc))]
    with pytest.raises(ValidationFailed) as e:
        store_for(fake_opensearch).publish("ns", events)
    assert [x.path for x in e.value.errors] == ["events[1].timestamp"]
    assert bulks(fake_opensearch) == [] and fake_opensearch.documents() == []


@pytest.fixture(params=["dynamodb", "opensearch"])
def any_store(request):
    if request.param == "dynamodb":
        request.getfixturevalue("aws")
        return DynamoDBEventStore()
    return store_for(request.getfixturevalue("fake_opensearch"))


@pytest.mark.parametrize("bounds, found", [
    ({"gte": datetime(1900, 1, 1)}, 2),
    ({"gt": datetime(999, 1, 1)}, 2),  # a 3-digit year sorted after every 4-digit one as text
    ({"lte": datetime(9999, 1, 1)}, 2),
    ({"lt": datetime(2300, 1, 1), "gt": datetime(1, 1, 1)}, 2),
    ({"lt": datetime(1900, 1, 1)}, 0),
    ({"lte": datetime(999, 1, 1)}, 0),
    ({"gt": datetime(2300, 1, 1)}, 0),
    ({"gte": datetime(9999, 1, 1)}, 0),
])
def test_query_bounds_beyond_what_an_event_can_hold_answer_alike_on_every_backend(any_store, bounds, found):
    ns = f"bounds-{uuid.uuid4().hex[:8]}"
    any_store.publish(ns, [new_event(["a"], 1, timestamp=EPOCH), new_event(["a"], 2, timestamp=NOW)])
    assert any_store.query(ns, EventQuery(tags=["a"], **bounds)).total == found
    assert any_store.aggregate(ns, EventQuery(tags=["a"], **bounds), Aggregator(type="count")) == found


def test_an_opensearch_query_never_sends_a_bound_date_nanos_refuses(fake_opensearch):
    store = store_for(fake_opensearch)
    store.publish("ns", [new_event(["a"], 1, timestamp=NOW)])
    assert store.query("ns", EventQuery(gte=datetime(1, 1, 1), lte=datetime(9999, 12, 31))).total == 1


# --- 2. per-item bulk failures ----------------------------------------------------------------


def many_numbers(n: int, prefix: str) -> dict:
    return {f"{prefix}{i}": i for i in range(n)}


def test_a_permanent_item_failure_is_a_400_naming_the_event_and_nothing_stays_written(fake_opensearch):
    store = store_for(fake_opensearch)
    events = [new_event(["a"], 1, timestamp=NOW), new_event(["a"], many_numbers(1200, "k"), timestamp=NOW),
              new_event(["a"], 3, timestamp=NOW)]
    with pytest.raises(ValidationFailed) as e:
        store.publish("ns", events)
    assert e.value.status == 400
    ((path, reason),) = [(x.path, x.reason) for x in e.value.errors]
    assert path == "events[1].value" and "Limit of total fields [1000]" in reason
    assert fake_opensearch.documents("vamp-events-*") == []  # the two written were taken back
    assert store.query("ns", EventQuery()).total == 0


def test_the_total_fields_limit_reached_over_several_publishes_is_a_400(fake_opensearch):
    store = store_for(fake_opensearch)
    store.publish("ns", [new_event(["a"], many_numbers(600, "x"), timestamp=NOW)])
    with pytest.raises(ValidationFailed) as e:
        store.publish("ns", [new_event(["a"], many_numbers(600, "y"), timestamp=NOW)])
    assert e.value.errors[0].path == "events[0].value"


def test_a_mixed_bulk_answer_retries_the_transient_items_and_keeps_every_event_once(fake_opensearch):
    store = store_for(fake_opensearch)
    events = [new_event(["a"], i, timestamp=NOW - timedelta(seconds=i)) for i in range(3)]
    fake_opensearch.bulk_item_statuses([None, 429, 503])
    store.publish("ns", events)
    assert len(bulks(fake_opensearch)) == 2
    retried = [line for line in bulks(fake_opensearch)[1]["body"].splitlines() if '"index"' in line]
    assert len(retried) == 2  # only the two refused for now
    assert sorted(e["id"] for e in store.query("ns", EventQuery()).items) == sorted(e["id"] for e in events)


def test_items_refused_for_now_on_every_try_are_a_503_with_retry_after_and_nothing_stays_written(fake_opensearch):
    store = store_for(fake_opensearch)
    fake_opensearch.fail_documents(lambda doc: doc.get("value") == 2, status=429)
    with pytest.raises(EventStoreUnavailable) as e:
        store.publish("ns", [new_event(["a"], 1, timestamp=NOW), new_event(["a"], 2, timestamp=NOW)])
    reply = error_reply(e.value)
    assert reply.status == 503 and int(reply.headers["Retry-After"]) >= 1
    assert any(x.path == "events[1]" for x in e.value.errors)
    assert fake_opensearch.documents("vamp-events-*") == []
    assert 2 <= len(bulks(fake_opensearch)) <= 6  # retried, a bounded number of times (+ the undo)


def test_a_malformed_item_is_a_400_not_a_503(fake_opensearch):
    fake_opensearch.bulk_item_statuses([400])
    with pytest.raises(ValidationFailed) as e:
        store_for(fake_opensearch).publish("ns", [new_event(["a"], 1, timestamp=NOW)])
    assert e.value.errors[0].path == "events[0]" and "mapper_parsing_exception" in e.value.errors[0].reason


# --- 3. a cluster down, slow or throttling ----------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_busy_cluster_on_reads_is_a_503(fake_opensearch, status):
    fake_opensearch.fail("POST", "/*/_search", status=status)
    store = store_for(fake_opensearch)
    for call in (lambda: store.query("ns", EventQuery()),
                 lambda: store.aggregate("ns", EventQuery(), Aggregator(type="average", field="x"))):
        with pytest.raises(EventStoreUnavailable) as e:
            call()
        assert error_reply(e.value).status == 503 and "Retry-After" in error_reply(e.value).headers


def test_an_unreachable_cluster_is_a_503_on_reads_and_writes(fake_opensearch):
    store = store_for(fake_opensearch)
    fake_opensearch.stop()
    with pytest.raises(EventStoreUnavailable):
        store.query("ns", EventQuery())
    with pytest.raises(EventStoreUnavailable):
        store.publish("ns", [new_event(["a"], 1)])


def test_a_dropped_connection_and_a_timeout_are_a_503(fake_opensearch):
    store = OpenSearchEventStore(client=_client(fake_opensearch.url, timeout=0.5))
    fake_opensearch.fail("POST", "/*/_search", action="reset")
    with pytest.raises(EventStoreUnavailable):
        store.query("ns", EventQuery())
    fake_opensearch.clear()
    fake_opensearch.fail("POST", "/*/_search", action="delay", seconds=1.5)
    with pytest.raises(EventStoreUnavailable):
        store.query("ns", EventQuery())


def _client(url: str, timeout: float):  # type: ignore[no-untyped-def]
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[url], timeout=timeout, max_retries=0)


@pytest.mark.parametrize("method, status", [("HEAD", 503), ("PUT", 429), ("PUT", 503)])
def test_a_busy_cluster_on_the_first_template_write_is_a_503_and_the_next_publish_puts_it(fake_opensearch, method, status):
    store = OpenSearchEventStore(client=_client(fake_opensearch.url, timeout=5), refresh="wait_for")
    fake_opensearch.fail(method, "/_index_template/vamp-events", status=status, times=1)
    with pytest.raises(EventStoreUnavailable):
        store.publish("ns", [new_event(["a"], 1)])
    assert bulks(fake_opensearch) == []  # no event before its mapping is there
    store.publish("ns", [new_event(["a"], 2)])
    assert "vamp-events" in fake_opensearch.templates and len(fake_opensearch.documents("vamp-events-*")) == 1


# --- through the API, on both backends ---------------------------------------------------------


@pytest.fixture(params=["dynamodb", "opensearch"])
def events_api(request, api, monkeypatch):
    from chalicelib.settings import settings

    if request.param == "opensearch":
        fake = request.getfixturevalue("fake_opensearch")
        monkeypatch.setenv("VAMP_EVENT_STORE", "opensearch")
        monkeypatch.setenv("VAMP_OPENSEARCH_URL", fake.url)
        settings.cache_clear()
        request.addfinalizer(settings.cache_clear)
        api.fake = fake
    return api


def test_the_api_refuses_an_event_time_either_backend_cannot_hold_and_takes_any_bound(events_api):
    r = events_api.post("/api/v1/events", [{"tags": ["a"], "value": 1}, {"tags": ["a"], "timestamp": "1900-01-01T00:00:00Z"}])
    assert r.status_code == 400 and [e["path"] for e in r.json["errors"]] == ["[1].timestamp"]
    assert events_api.post("/api/v1/events", {"tags": ["a"], "value": 1}).status_code == 201
    if hasattr(events_api, "fake"):
        events_api.fake.refresh()
    r = events_api.get("/api/v1/events?tag=a&gte=0001-01-01T00:00:00Z&lt=9999-01-01T00:00:00Z")
    assert r.status_code == 200 and len(r.json) == 1
    assert events_api.get("/api/v1/events?tag=a&lt=0999-01-01T00:00:00Z").json == []


def test_the_api_answers_a_busy_opensearch_with_a_503_in_vamps_shape(api, fake_opensearch, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_EVENT_STORE", "opensearch")
    monkeypatch.setenv("VAMP_OPENSEARCH_URL", fake_opensearch.url)
    settings.cache_clear()
    try:
        fake_opensearch.fail("POST", "/*/_search", status=429)
        r = api.get("/api/v1/events?tag=a")
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert r.json["errors"][0]["path"] == "backend" and "429" in r.json["errors"][0]["reason"]
    finally:
        settings.cache_clear()


def test_a_write_block_on_an_item_is_a_503_not_a_400(fake_opensearch):
    fake_opensearch.bulk_item_statuses([None, 403])
    with pytest.raises(EventStoreUnavailable) as e:
        store_for(fake_opensearch).publish("ns", [new_event(["a"], 1, timestamp=NOW), new_event(["a"], 2, timestamp=NOW)])
    assert "cluster_block_exception" in e.value.errors[0].reason and fake_opensearch.documents("vamp-events-*") == []
