"""OpenSearch specifics (index names, template, documents, errors) and the fake server itself."""
from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.store.event_store import Aggregator, EventQuery, EventStoreUnavailable, new_event
from chalicelib.store.opensearch_events import EVENTS_TEMPLATE, ITEM_RETRY, OpenSearchEventStore, index_name
from tests.fakes import FakeOpenSearch

INFRA = Path(__file__).resolve().parents[2] / "infra" / "opensearch"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def test_the_events_template_in_infra_is_the_one_the_code_puts():
    assert json.loads((INFRA / "vamp-events.json").read_text()) == EVENTS_TEMPLATE


def test_the_logs_template_maps_every_field_of_the_haproxy_log_format():
    template = json.loads((INFRA / "vamp-logs.json").read_text())
    assert template["index_patterns"] == ["vamp-logs-*"]
    fields = set(template["template"]["mappings"]["properties"])
    required = set(
        "client_ip client_port timestamp frontend backend server Tq Tw Tc Tr Tt status bytes_read termination_state "
        "actconn feconn beconn srv_conn retries srv_queue backend_queue request namespace gateway route".split()
    )
    assert required <= fields
    log_format = pytest.importorskip("chalicelib.contract.log_format")
    assert {name for name, _ in log_format.LOG_FIELDS} <= fields


def test_index_names_are_daily_lowercase_and_safe():
    assert index_name("default", "2024-05-01T23:59:59.999999Z") == "vamp-events-default-2024.05.01"
    assert index_name("Team A/b*", "2024-05-01T00:00:00.000000Z") == "vamp-events-team_a_b_-2024.05.01"


def test_documents_land_in_daily_indices_with_namespace_and_numbers(fake_opensearch):
    store = OpenSearchEventStore(url=fake_opensearch.url, refresh="wait_for")
    today = new_event(["a"], {"cpu": 0.5, "latency": {"p95": 120}, "name": "x"}, timestamp=NOW)
    yesterday = new_event(["a"], 3, timestamp=NOW - timedelta(days=1))
    store.publish("Team A", [today, yesterday])
    (doc,) = fake_opensearch.documents(index_name("Team A", today["timestamp"]))
    assert doc == {**today, "namespace": "Team A", "numbers": {"value/cpu": 0.5, "value/latency/p95": 120.0}}
    (doc,) = fake_opensearch.documents(index_name("Team A", yesterday["timestamp"]))
    assert doc["numbers"] == {"value": 3.0}
    assert store.query("Team A", EventQuery(tags=["a"])).items == [today, yesterday]


def test_the_template_is_put_once_before_the_first_write(fake_opensearch):
    store = OpenSearchEventStore(url=fake_opensearch.url)
    store.publish("ns", [new_event(["a"], 1)])
    store.publish("ns", [new_event(["a"], 2)])
    OpenSearchEventStore(url=fake_opensearch.url).publish("ns", [new_event(["a"], 3)])  # same client, cached
    calls = [(r["method"], r["path"]) for r in fake_opensearch.requests]
    assert calls == [
        ("HEAD", "/_index_template/vamp-events"),
        ("PUT", "/_index_template/vamp-events"),
        ("POST", "/_bulk"),
        ("POST", "/_bulk"),
        ("POST", "/_bulk"),
    ]
    assert fake_opensearch.templates["vamp-events"] == EVENTS_TEMPLATE


def test_the_search_filters_on_namespace_and_sorts_newest_first(fake_opensearch):
    store = OpenSearchEventStore(url=fake_opensearch.url)
    store.query("ns", EventQuery(tags=["a", "b"], type="metric", gte=NOW, page=2, per_page=5))
    (request,) = fake_opensearch.requests
    assert request["path"] == "/vamp-events-ns-*/_search"
    body = json.loads(request["body"])
    assert body["query"]["bool"]["filter"] == [
        {"term": {"namespace": "ns"}},
        {"term": {"tags": "a"}},
        {"term": {"tags": "b"}},
        {"term": {"type": "metric"}},
        {"range": {"timestamp": {"gte": NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z")}}},
    ]
    assert [next(iter(s)) for s in body["sort"]] == ["timestamp", "id"]
    assert (body["from"], body["size"], body["track_total_hits"]) == (5, 5, True)


def test_aggregations_run_on_the_numbers(fake_opensearch):
    store = OpenSearchEventStore(url=fake_opensearch.url)
    store.aggregate("ns", EventQuery(tags=["a"]), Aggregator(type="average", field="latency.p95"))
    body = json.loads(fake_opensearch.requests[-1]["body"])
    assert body["aggs"] == {"result": {"avg": {"field": "numbers.value/latency/p95"}}} and body["size"] == 0


def test_items_rejected_on_every_try_fail_the_publish(fake_opensearch):
    fake_opensearch.reject_bulk_items(ITEM_RETRY.attempts, status=429)
    with pytest.raises(EventStoreUnavailable, match="refused 2 of 2"):
        OpenSearchEventStore(url=fake_opensearch.url).publish("ns", [new_event(["a"], 1), new_event(["a"], 2)])


def test_a_passing_outage_is_retried_a_lasting_one_is_a_503(fake_opensearch):
    store = OpenSearchEventStore(url=fake_opensearch.url)
    fake_opensearch.fail_bulk(1, status=503)
    store.publish("ns", [new_event(["a"], 1)])  # the client retries 502/503/504
    assert len(fake_opensearch.documents()) == 1
    fake_opensearch.fail_bulk(10, status=503)
    with pytest.raises(EventStoreUnavailable) as e:
        store.publish("ns", [new_event(["a"], 2)])
    assert e.value.status == 503


def test_pages_beyond_the_result_window_are_refused(fake_opensearch):
    with pytest.raises(ValidationFailed):
        OpenSearchEventStore(url=fake_opensearch.url).query("ns", EventQuery(page=101, per_page=100))


def test_without_a_url_the_store_says_so(monkeypatch):
    monkeypatch.delenv("VAMP_OPENSEARCH_URL", raising=False)
    settings.cache_clear()
    with pytest.raises(EventStoreUnavailable, match="VAMP_OPENSEARCH_URL"):
        OpenSearchEventStore().query("ns", EventQuery())
    settings.cache_clear()


def test_the_url_comes_from_settings(fake_opensearch, monkeypatch):
    monkeypatch.setenv("VAMP_OPENSEARCH_URL", fake_opensearch.url)
    settings.cache_clear()
    OpenSearchEventStore().publish("ns", [new_event(["a"], 1)])
    assert len(fake_opensearch.documents("vamp-events-*")) == 1
    settings.cache_clear()


# --- the fake itself ------------------------------------------------------------------------


def bulk(url: str, lines: list[dict], index: str | None = None, query: str = "") -> requests.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    path = (f"/{index}/_bulk" if index else "/_bulk") + query
    return requests.post(url + path, data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=5)


def test_fake_restarts_on_the_same_port_with_its_documents(fake_opensearch):
    url = fake_opensearch.url
    assert bulk(url, [{"index": {"_index": "vamp-logs-2024.05.01"}}, {"status": 200}]).json()["errors"] is False
    session = requests.Session()  # a pooled keep-alive connection must not outlive stop()
    assert session.get(url, timeout=5).ok
    fake_opensearch.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fake_opensearch.port), timeout=1).close()
    fake_opensearch.start()
    assert fake_opensearch.url == url
    assert session.get(url + "/_cat/indices?format=json", timeout=5).json()[0]["docs.count"] == "1"
    assert fake_opensearch.documents("vamp-logs-*") == [{"status": 200}]


def test_fake_bulk_failures_then_recovery(fake_opensearch):
    fake_opensearch.fail_bulk(2, status=429)
    line = [{"create": {}}, {"x": 1}]
    assert [bulk(fake_opensearch.url, line, "logs").status_code for _ in range(3)] == [429, 429, 200]
    assert fake_opensearch.documents("logs") == [{"x": 1}]
    assert [r["path"] for r in fake_opensearch.requests] == ["/logs/_bulk"] * 3


def test_fake_bulk_items_report_each_status(fake_opensearch):
    r = bulk(
        fake_opensearch.url,
        [{"create": {"_index": "i", "_id": "1"}}, {"a": 1}, {"create": {"_index": "i", "_id": "1"}}, {"a": 2},
         {"index": {"_index": "i", "_id": "1"}}, {"a": 3}, {"delete": {"_index": "i", "_id": "1"}}],
    ).json()
    assert r["errors"] is True
    assert [next(iter(i.values()))["status"] for i in r["items"]] == [201, 409, 200, 200]


def test_fake_search_count_sort_and_delete(fake_opensearch):
    url = fake_opensearch.url
    docs = [{"n": n, "tags": ["odd" if n % 2 else "even"], "t": f"2024-05-01T00:00:0{n}Z"} for n in range(6)]
    bulk(url, [line for d in docs for line in ({"index": {"_index": f"x-{d['n'] % 2}"}}, d)], query="?refresh=true")
    query = {"bool": {"filter": [{"terms": {"tags": ["odd"]}}, {"range": {"t": {"gt": "2024-05-01T00:00:01Z"}}}]}}
    r = requests.post(f"{url}/x-*/_search", json={"query": query, "sort": [{"t": "desc"}], "size": 1, "track_total_hits": True,
                                                  "aggs": {"s": {"sum": {"field": "n"}}, "c": {"value_count": {"field": "n"}}}}, timeout=5).json()
    assert r["hits"]["total"] == {"value": 2, "relation": "eq"} and r["hits"]["hits"][0]["_source"]["n"] == 5
    assert r["aggregations"] == {"s": {"value": 8.0}, "c": {"value": 2}}
    assert requests.get(f"{url}/x-*/_count", timeout=5).json()["count"] == 6
    assert requests.get(f"{url}/nope/_search", timeout=5).status_code == 404
    assert requests.get(f"{url}/nope-*/_search", timeout=5).json()["hits"]["total"]["value"] == 0
    assert requests.delete(f"{url}/x-0", timeout=5).json() == {"acknowledged": True}
    assert [i["index"] for i in requests.get(f"{url}/_cat/indices?format=json", timeout=5).json()] == ["x-1"]
    assert requests.post(f"{url}/x-*/_refresh", timeout=5).ok
    assert requests.get(f"{url}/_unknown/thing", timeout=5).status_code == 400


def test_fake_takes_compressed_and_chunked_bodies(fake_opensearch):
    from opensearchpy import OpenSearch

    client = OpenSearch([fake_opensearch.url], http_compress=True)
    assert client.bulk(body=[{"index": {"_index": "z"}}, {"a": 1}])["errors"] is False
    chunks = (line.encode() for line in ['{"index": {"_index": "z"}}\n', '{"a": 2}\n'])
    ndjson = {"Content-Type": "application/x-ndjson"}
    assert requests.post(f"{fake_opensearch.url}/_bulk", data=chunks, headers=ndjson, timeout=5).json()["errors"] is False
    assert sorted(d["a"] for d in fake_opensearch.documents("z")) == [1, 2]


def test_fake_as_a_context_manager_on_a_chosen_port():
    with FakeOpenSearch() as fake:
        port = fake.port
    with FakeOpenSearch(port=port) as again:
        assert requests.head(again.url, timeout=5).status_code == 200


def test_amazon_opensearch_endpoints_are_signed_with_sigv4():
    from chalicelib.store.opensearch_events import _client_for

    signed = _client_for("https://search-vamp.us-east-1.es.amazonaws.com")
    assert type(signed.transport.kwargs["http_auth"]).__name__ == "Urllib3AWSV4SignerAuth"
    assert "http_auth" not in _client_for("http://127.0.0.1:9").transport.kwargs
