"""The fake OpenSearch refuses what a cluster refuses (tests/fakes/opensearch_server.py): requests
outside the published API specification, documents its index templates' mappings refuse, bulk
bodies BulkRequestParser refuses; and it answers as one does: per-item results, writes seen by
searches only after a refresh, any chosen request failed, SigV4 checked."""
from __future__ import annotations

import json

import pytest
import requests

from tests.fakes import FakeOpenSearch
from tests.fakes.opensearch_api import OPERATIONS

NDJSON = {"Content-Type": "application/x-ndjson"}
TEMPLATE = {
    "index_patterns": ["t-*"],
    "priority": 10,
    "template": {
        "settings": {"index": {"refresh_interval": "-1", "mapping": {"total_fields": {"limit": 12}}}},
        "mappings": {
            "dynamic": False,
            "dynamic_templates": [{"n_as_double": {"path_match": "n.*", "mapping": {"type": "double"}}}],
            "properties": {
                "k": {"type": "keyword"}, "at": {"type": "date_nanos"}, "s": {"type": "short"},
                "n": {"type": "object", "dynamic": True}, "strict": {"type": "object", "dynamic": "strict"},
            },
        },
    },
}


def bulk(url: str, lines: list, query: str = "") -> requests.Response:
    body = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    return requests.post(f"{url}/_bulk{query}", data=body.encode(), headers=NDJSON, timeout=5)


def statuses(response: requests.Response) -> list[int]:
    return [next(iter(i.values()))["status"] for i in response.json()["items"]]


def errors(response: requests.Response) -> list[dict | None]:
    return [next(iter(i.values())).get("error") for i in response.json()["items"]]


@pytest.fixture()
def fake(fake_opensearch):
    assert requests.put(f"{fake_opensearch.url}/_index_template/t", json=TEMPLATE, timeout=5).ok
    return fake_opensearch


def search(url: str, query: dict, index: str = "t-*", **body) -> dict:
    return requests.post(f"{url}/{index}/_search", json={"query": query, **body}, timeout=5).json()


# --- the API specification --------------------------------------------------------------------


def test_requests_outside_the_specification_are_refused(fake_opensearch):
    url = fake_opensearch.url
    r = requests.post(f"{url}/_bulk?refresh=true&bogus=1", data=b'{"index":{"_index":"x"}}\n{}\n', headers=NDJSON, timeout=5)
    assert r.status_code == 400 and "unrecognized parameter: [bogus]" in r.json()["error"]["reason"]
    r = requests.post(f"{url}/_bulk?refresh=soon", data=b'{"index":{"_index":"x"}}\n{}\n', headers=NDJSON, timeout=5)
    assert r.status_code == 400
    assert requests.get(f"{url}/x/_search?ignore_unavailable=yes", timeout=5).status_code == 400
    assert requests.post(f"{url}/_index_template/t?create=true", json=TEMPLATE, timeout=5).ok
    assert requests.post(f"{url}/x", json={}, timeout=5).status_code == 405  # indices.create is PUT
    assert requests.get(f"{url}/_bulk", timeout=5).status_code == 405
    assert requests.get(f"{url}/_nodes/stats/x", timeout=5).status_code == 400
    r = requests.post(f"{url}/_bulk", data=b'{"index":{"_index":"x"}}\n{}\n', timeout=5)  # no Content-Type
    assert r.status_code == 406
    assert requests.put(f"{url}/Bad_Name", timeout=5).json()["error"]["type"] == "invalid_index_name_exception"


def test_the_allowed_operations_are_the_ones_vamp_calls():
    assert set(OPERATIONS["/{index}/_bulk"]) == {"POST", "PUT"}
    assert "refresh" in OPERATIONS["/_bulk"]["POST"][1] and "ignore_unavailable" in OPERATIONS["/{index}/_search"]["POST"][1]
    assert OPERATIONS["/_index_template/{name}"]["HEAD"][0] == "indices.exists_index_template"


def test_a_body_over_the_content_limit_is_a_413():
    with FakeOpenSearch(max_content_length=1024) as small:
        r = requests.post(f"{small.url}/_bulk", data=b'{"index":{"_index":"x"}}\n{"a":"%s"}\n' % (b"x" * 2000),
                          headers=NDJSON, timeout=5)
        assert r.status_code == 413 and small.documents() == []


# --- mappings ---------------------------------------------------------------------------------


def test_the_template_mapping_decides_each_item(fake):
    r = bulk(fake.url, [
        {"index": {"_index": "t-1", "_id": "ok"}}, {"k": "A", "at": "2024-05-01T00:00:00.123456789Z", "s": 7},
        {"index": {"_index": "t-1", "_id": "old"}}, {"at": "1969-12-31T23:59:59Z"},
        {"index": {"_index": "t-1", "_id": "late"}}, {"at": "2262-04-12T00:00:00Z"},
        {"index": {"_index": "t-1", "_id": "big"}}, {"s": 40000},
        {"index": {"_index": "t-1", "_id": "obj"}}, {"k": {"x": 1}},
        {"index": {"_index": "t-1", "_id": "strict"}}, {"strict": {"new": 1}},
        {"index": {"_index": "t-1", "_id": "loose"}}, {"unmapped": {"any": ["thing"]}},
    ])
    assert statuses(r) == [201, 400, 400, 400, 400, 400, 201]
    old, late = errors(r)[1], errors(r)[2]
    assert old["type"] == "mapper_parsing_exception" and "failed to parse field [at] of type [date_nanos]" in old["reason"]
    assert "before the epoch in 1970" in old["caused_by"]["reason"] and "after 2262-04-11" in late["caused_by"]["reason"]
    assert "out of range for a short" in errors(r)[3]["caused_by"]["reason"]
    assert errors(r)[5]["type"] == "strict_dynamic_mapping_exception"
    assert len(fake.documents("t-1")) == 2


def test_keyword_terms_are_exact_and_unindexed_fields_match_nothing(fake):
    bulk(fake.url, [{"index": {"_index": "t-1"}}, {"k": "Sava", "unmapped": "x"}], "?refresh=true")
    assert search(fake.url, {"term": {"k": "Sava"}})["hits"]["total"]["value"] == 1
    assert search(fake.url, {"term": {"k": "sava"}})["hits"]["total"]["value"] == 0
    assert search(fake.url, {"term": {"unmapped": "x"}})["hits"]["total"]["value"] == 0  # dynamic: false
    r = requests.post(f"{fake.url}/t-*/_search", json={"sort": [{"unmapped": "asc"}]}, timeout=5)
    assert r.status_code == 400 and "No mapping found for [unmapped]" in json.dumps(r.json())
    r = requests.post(f"{fake.url}/t-*/_search", json={"sort": [{"unmapped": {"order": "asc", "unmapped_type": "keyword"}}]},
                      timeout=5)
    assert r.ok


def test_a_range_bound_date_nanos_cannot_hold_is_a_400(fake):
    bulk(fake.url, [{"index": {"_index": "t-1"}}, {"at": "2024-05-01T00:00:00Z"}], "?refresh=true")
    assert search(fake.url, {"range": {"at": {"gte": "1970-01-01T00:00:00Z"}}})["hits"]["total"]["value"] == 1
    r = requests.post(f"{fake.url}/t-*/_search", json={"query": {"range": {"at": {"gte": "1900-01-01T00:00:00Z"}}}}, timeout=5)
    assert r.status_code == 400


def test_dynamic_fields_count_toward_the_total_fields_limit(fake):
    # mapped: k, at, s, n, strict = 5 of 12; each new n.* is one more
    r = bulk(fake.url, [{"index": {"_index": "t-1"}}, {"n": {f"a{i}": i for i in range(7)}},
                        {"index": {"_index": "t-1"}}, {"n": {"b": 1}},
                        {"index": {"_index": "t-1"}}, {"n": {"a0": 2.5}}])
    assert statuses(r) == [201, 400, 201]
    assert errors(r)[1] == {"type": "illegal_argument_exception", "reason": "Limit of total fields [12] has been exceeded"}
    assert fake.mapping("t-1")["properties"]["n"]["properties"]["a0"] == {"type": "double"}
    assert "b" not in fake.mapping("t-1")["properties"]["n"]["properties"]  # a refused document adds nothing


def test_without_a_template_strings_map_as_text_and_keyword_and_dates_are_detected(fake_opensearch):
    url = fake_opensearch.url
    bulk(url, [{"index": {"_index": "plain"}}, {"name": "Hello World", "when": "2024-05-01T00:00:00Z", "n": 3}], "?refresh=true")
    props = fake_opensearch.mapping("plain")["properties"]
    assert props["name"]["type"] == "text" and props["name"]["fields"]["keyword"]["type"] == "keyword"
    assert props["when"] == {"type": "date"} and props["n"] == {"type": "long"}
    assert search(url, {"term": {"name": "hello"}}, "plain")["hits"]["total"]["value"] == 1
    assert search(url, {"term": {"name.keyword": "Hello World"}}, "plain")["hits"]["total"]["value"] == 1


# --- _bulk bodies -----------------------------------------------------------------------------


def test_a_malformed_document_is_its_items_400_a_malformed_action_the_whole_requests(fake_opensearch):
    url = fake_opensearch.url
    r = bulk(url, [{"index": {"_index": "x"}}, {"a": 1}, {"index": {"_index": "x"}}, '{"a": ', {"index": {"_index": "x"}}, {"a": 3}])
    assert r.status_code == 200 and statuses(r) == [201, 400, 201]
    assert errors(r)[1]["type"] == "mapper_parsing_exception" and errors(r)[1]["caused_by"]["type"] == "json_parse_exception"
    r = bulk(url, ['{"index": {"_index": "x"}', {"a": 1}])
    assert r.status_code == 400
    assert bulk(url, [{"index": {"_index": "x"}, "extra": 1}, {"a": 1}]).status_code == 400
    assert bulk(url, [{"index": {"_index": "x", "unknown": 1}}, {"a": 1}]).status_code == 400
    r = requests.post(f"{url}/_bulk", data=b'{"index":{"_index":"x"}}\n{"a":1}', headers=NDJSON, timeout=5)
    assert r.status_code == 400 and "terminated by a newline" in r.json()["error"]["reason"]
    assert bulk(url, [{"index": {"_index": "Bad"}}, {"a": 1}]).json()["items"][0]["index"]["status"] == 400
    assert len(fake_opensearch.documents("x")) == 2


def test_one_bulk_answers_mixed_statuses_with_real_error_bodies(fake_opensearch):
    fake_opensearch.bulk_item_statuses([None, 429, 400, 503])
    r = bulk(fake_opensearch.url, [line for i in range(4) for line in ({"index": {"_index": "x", "_id": str(i)}}, {"i": i})])
    assert r.json()["errors"] is True and statuses(r) == [201, 429, 400, 503]
    assert errors(r)[1]["type"] == "rejected_execution_exception" and errors(r)[2]["type"] == "mapper_parsing_exception"
    assert [d["i"] for d in fake_opensearch.documents("x")] == [0]


# --- refresh, failures, SigV4 -----------------------------------------------------------------


def test_writes_are_searchable_only_after_a_refresh(fake):
    url = fake.url
    bulk(url, [{"index": {"_index": "t-1"}}, {"k": "a"}])
    assert fake.documents("t-1") == [{"k": "a"}]  # stored...
    assert search(url, {"match_all": {}})["hits"]["total"]["value"] == 0  # ...not yet seen (refresh_interval -1)
    assert requests.get(f"{url}/t-*/_count", timeout=5).json()["count"] == 0
    assert requests.post(f"{url}/t-1/_refresh", timeout=5).ok
    assert search(url, {"match_all": {}})["hits"]["total"]["value"] == 1
    bulk(url, [{"index": {"_index": "t-1"}}, {"k": "b"}], "?refresh=wait_for")
    assert search(url, {"match_all": {}})["hits"]["total"]["value"] == 2


def test_the_refresh_interval_makes_writes_visible_by_itself(fake_opensearch):
    from tests.agent.helpers import wait_for

    quick = {"index_patterns": ["q-*"], "template": {"settings": {"index": {"refresh_interval": "50ms"}}}}
    assert requests.put(f"{fake_opensearch.url}/_index_template/q", json=quick, timeout=5).ok
    bulk(fake_opensearch.url, [{"index": {"_index": "q-1"}}, {"a": 1}])
    wait_for(lambda: search(fake_opensearch.url, {"match_all": {}}, "q-*")["hits"]["total"]["value"] == 1, 5,
             what="the periodic refresh")


def test_any_chosen_request_fails(fake_opensearch):
    url = fake_opensearch.url
    fake_opensearch.fail("GET", "/", status=503, nth=2)
    assert [requests.get(url, timeout=5).status_code for _ in range(3)] == [200, 503, 200]
    fake_opensearch.fail("HEAD", "/_index_template/*", status=429, times=2)
    assert [requests.head(f"{url}/_index_template/x", timeout=5).status_code for _ in range(3)] == [429, 429, 404]
    fake_opensearch.fail("GET", "/_cluster/health", action="reset")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_cluster/health", timeout=5)
    fake_opensearch.fail("GET", "/_cat/indices", action="delay", seconds=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{url}/_cat/indices", timeout=0.2)


def test_an_iam_protected_fake_refuses_unsigned_and_wrongly_signed_requests():
    from botocore.credentials import Credentials
    from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth
    from opensearchpy.exceptions import AuthorizationException

    keys = ("AKIAFAKEFAKEFAKE0002", "the-right-secret", "us-east-1", "es")
    with FakeOpenSearch(sigv4=keys) as fake:
        assert requests.get(fake.url, timeout=5).status_code == 403
        right = OpenSearch([fake.url], http_auth=Urllib3AWSV4SignerAuth(Credentials(keys[0], keys[1]), "us-east-1", "es"))
        assert right.bulk(body=[{"index": {"_index": "x"}}, {"a": 1}], params={"refresh": "true"})["errors"] is False
        assert right.search(index="x", body={"query": {"match_all": {}}})["hits"]["total"]["value"] == 1
        for creds, region in ((Credentials(keys[0], "a-wrong-secret"), "us-east-1"), (Credentials(keys[0], keys[1]), "eu-west-1")):
            wrong = OpenSearch([fake.url], http_auth=Urllib3AWSV4SignerAuth(creds, region, "es"))
            with pytest.raises(AuthorizationException):
                wrong.search(index="x", body={"query": {"match_all": {}}})
