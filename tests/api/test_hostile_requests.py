"""Issue 12's hand probes, each a request that answered a 5xx, wrote what it refused, or stored
what made later pages fail: now a 4xx naming the field and the reason, with nothing written
(both tables compared before and after), and the server answering the next request
(docs/decisions/0024)."""
from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from chalicelib.api import negotiation
from tests.api.test_bounds import BREED, EXT, everything, local_api, refused  # noqa: F401 (a fixture)


def raw(api, method: str, path: str, text: str, content_type: str = "application/json", **headers):
    return api.request(method, path, yaml_body=text, headers={"Content-Type": content_type, **headers})


@pytest.mark.parametrize("path, text", [
    ("/api/v1/gateways", '{"name": "g", "port": 20001, "routes": {"%s": {"weight": 1e400}}}' % EXT),
    ("/api/v1/release-policies", '{"name": "p", "steps": [1e400]}'),
    ("/api/v1/events", '{"tags": ["t"], "value": 1e400}'),
])
def test_a_number_out_of_range_is_a_400(api, path, text):
    before = everything()
    refused(raw(api, "POST", path, text), 400, "body", "1e400 is out of range")
    assert everything() == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_that_are_not_json_are_a_400(api, constant):
    before = everything()
    refused(raw(api, "POST", "/api/v1/events", '{"tags": ["t"], "value": %s}' % constant), 400, "body",
            f"{constant} is not a number")
    assert everything() == before


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+400"])
def test_yaml_numbers_that_are_not_finite_are_a_400(api, value):
    before = everything()
    refused(raw(api, "POST", "/api/v1/events", f"tags: [t]\nvalue: {value}\n", "application/x-yaml"), 400, "body",
            "not a finite number")
    assert everything() == before


def test_a_percentage_string_out_of_range_names_the_field(api):
    r = api.post("/api/v1/release-policies", {"name": "p", "steps": ["1e400%"]})
    refused(r, 400, "steps", "invalid percentage")  # not pydantic's `function-before[...]` tags


def test_non_finite_values_stored_before_are_never_sent_as_invalid_json():
    body, content_type = negotiation.render([{"value": float("nan")}, {"value": float("inf")}, {"value": 1.5}], None)
    assert content_type == "application/json"
    assert json.loads(body) == [{"value": None}, {"value": None}, {"value": 1.5}]  # strict parse: no NaN


def test_a_lone_surrogate_stored_before_still_lists_as_yaml():
    body, _ = negotiation.render([{"name": "s", "metadata": {"a": "\ud800"}}], "application/x-yaml")
    assert "name: s" in body


@pytest.mark.parametrize("text", [
    '{"name": "s1", "deployable": "x", "metadata": {"a": "\\ud800"}}',
    '{"name": "s\\ud800", "deployable": "x"}',  # was a 409 "retry"
    '{"name": "s2", "deployable": "x", "metadata": {"\\udfff": "x"}}',
])
def test_a_lone_surrogate_is_a_400_and_yaml_listings_keep_working(api, text):
    before = everything()
    refused(raw(api, "POST", "/api/v1/breeds", text), 400, "body", "lone surrogate")
    assert everything() == before
    listing = api.get("/api/v1/breeds", headers={"Accept": "application/x-yaml"})
    assert listing.status_code == 200, listing.body[:200]


@pytest.mark.parametrize("body, field, reason", [
    ('{"tags": 5}', "tags", "a list of tags"),
    ('{"tags": "a"}', "tags", "a list of tags"),
    ('{"tags": [5]}', "tags.0", "valid string"),
    ('{"timestamp": 5}', "timestamp", "a map of gt, gte, lt, lte"),
    ('{"aggregator": 5}', "aggregator", "a map of type and field"),
    ('[1]', "body", "an event query is a map"),
    ('"x"', "body", "an event query is a map"),
])
def test_event_query_bodies_of_the_wrong_shape_are_a_400(api, body, field, reason):
    refused(raw(api, "POST", "/api/v1/events/get", body), 400, field, reason)


@pytest.mark.parametrize("body, reason", [
    ('{"reference": 5}', "unknown blueprint '5'"),
    ('{"reference": []}', "must be a string"),
    ('{"reference": {}}', "must be a string"),
    ('{"reference": ""}', "invalid blueprint reference ''"),
    ('{"reference": "a/b"}', "invalid blueprint reference"),
])
def test_a_deployment_reference_that_is_not_a_name_is_a_400(api, body, reason):
    before = everything()
    refused(raw(api, "POST", "/api/v1/deployments", body), 400, "reference", reason)
    assert everything() == before


def test_a_document_no_item_can_hold_is_a_413(api):
    before = everything()
    big = {"name": "big", "deployable": "x", "metadata": {f"k{i}": "v" * 1000 for i in range(500)}}
    refused(api.post("/api/v1/breeds", big), 413, "", "more than 262144")
    assert everything() == before


def test_dynamodb_refusing_an_item_for_its_size_is_a_413(api, monkeypatch):
    """A deployment grown by merges can pass the document check and still exceed what DynamoDB
    takes with the item's other attributes: the store's ValidationException is a 413, not a 500."""
    from botocore.exceptions import ClientError

    from chalicelib.store import dynamodb_artifacts

    def too_big(self, *args, **kwargs):
        raise ClientError({"Error": {"Code": "ValidationException",
                                     "Message": "Item size has exceeded the maximum allowed size"}}, "PutItem")

    store = dynamodb_artifacts.DynamoDBArtifactStore
    monkeypatch.setattr(store, "_ddb_put", too_big, raising=False)
    original = store._transact

    def failing(self, namespace, items, writes):
        client = self._ddb
        monkeypatch.setattr(client, "put_item", lambda **kw: too_big(None))
        monkeypatch.setattr(client, "transact_write_items", lambda **kw: too_big(None))
        return original(self, namespace, items, writes)

    monkeypatch.setattr(store, "_transact", failing)
    refused(api.post("/api/v1/breeds", {**BREED, "name": "sized"}), 413, "", "item size exceeded")


@pytest.mark.parametrize("accept", ["image/png", "text/html"])
def test_an_unanswerable_accept_is_refused_before_anything_is_written(api, accept):
    before = everything()
    r = api.post("/api/v1/breeds", {**BREED, "name": "png"}, headers={"Accept": accept})
    refused(r, 406, "Accept", "application/json or application/x-yaml")
    assert everything() == before
    assert api.get("/api/v1/breeds/png").status_code == 404


def test_an_unsupported_content_type_is_refused_before_anything_is_written(api):
    before = everything()
    r = raw(api, "POST", "/api/v1/breeds", json.dumps({**BREED, "name": "ct"}), "image/png")
    refused(r, 415, "Content-Type", "application/json or application/x-yaml")
    assert everything() == before


@pytest.mark.parametrize("value", ["on", "y", "Yes", "TRUE", "1", ""])
def test_flags_people_write_as_true_validate_only(api, value):
    before = everything()
    r = api.post(f"/api/v1/breeds?validate_only={value}", {**BREED, "name": "checked"})
    assert r.status_code in (200, 201, 202), r.body[:200]
    assert everything() == before  # `validate_only=on` wrote


@pytest.mark.parametrize("value", ["off", "no", "N", "false", "0"])
def test_flags_people_write_as_false_write(api, value):
    r = api.post(f"/api/v1/breeds?validate_only={value}", {**BREED, "name": f"written-{value.lower()}"})
    assert r.status_code == 201, r.body[:200]


@pytest.mark.parametrize("value", ["maybe", "2", "truthy"])
def test_a_flag_that_is_neither_is_a_400(api, value):
    before = everything()
    refused(api.post(f"/api/v1/breeds?validate_only={value}", {**BREED, "name": "x"}), 400, "validate_only",
            "is not a flag")
    assert everything() == before


def test_a_query_string_too_long_for_a_link_is_a_400(api):
    r = api.get("/api/v1/breeds?tag=" + "a" * 60_000)
    refused(r, 400, "query", "longer than 4096 characters")
    assert "Link" not in r.headers


def test_links_carry_a_bounded_query(api):
    r = api.get("/api/v1/breeds?per_page=1&x=" + "a" * 3000)
    assert r.status_code == 200 and len(r.headers["Link"]) < 4 * 3200


@pytest.mark.parametrize("path", ["/api/v1/breeds/%C3%28", "/api/v1/breeds/%FF", "/api/v1/breeds/a%ED%A0%80"])
def test_a_path_name_that_is_not_utf8_is_a_400(api, path):
    before = everything()
    refused(api.put(path, {**BREED, "name": "\ufffd("}), 400, "name", "")
    assert api.get(path).status_code == 400
    assert everything() == before


@pytest.mark.parametrize("name", ["a\u202eb", "a\u200bb", "a\x00b", "a\x85b", "a\ufeffb", "a\ufffdb", "a\ue000b",
                                  "a\U000e0041b"])
def test_names_with_control_or_format_characters_are_a_400(api, name):
    before = everything()
    refused(api.post("/api/v1/breeds", {**BREED, "name": name}), 400, "name", "control or format characters")
    assert everything() == before


@pytest.mark.parametrize("key", ["a\u202eb", "A\x00", "a\nb", "\u2066x"])
def test_map_keys_with_control_or_format_characters_are_a_400(api, key):
    before = everything()
    r = api.post("/api/v1/breeds", {**BREED, "name": "k", "metadata": {key: "x"}})
    refused(r, 400, "body", "control or format character")
    assert everything() == before


def test_names_in_other_scripts_are_still_names(api):
    for name in ("café", "サバ", "sava:1.0.0"):
        r = api.post("/api/v1/breeds", {**BREED, "name": name})
        assert r.status_code == 201, r.body[:200]


def test_the_document_pattern_refuses_what_the_code_refuses():
    import re

    from chalicelib.api.schemas import NAME

    # A JSON Schema pattern runs over code points, where no lone surrogate can be (the code refuses
    # those at the parser); everything else the code refuses, the document refuses too.
    pattern = re.compile(NAME["pattern"])
    for name in ("a\u202eb", "a\x00b", "a\ufffdb", "a\U000e0001b", "a\U0010fffdb"):
        assert not pattern.fullmatch(name)
    assert pattern.fullmatch("café") and pattern.fullmatch("a\U0001f600b")


def test_a_route_key_written_as_a_yaml_flow_sequence_is_its_text(api):
    """Vamp's reader takes `[127.0.0.1:8080]:` unquoted as the route's name; PyYAML found an
    unhashable key (a 400 on a Vamp user's file)."""
    text = "name: gf\nport: 20009\nroutes:\n  [127.0.0.1:8080]:\n    weight: 100%\n"
    r = api.request("POST", "/api/v1/gateways", yaml_body=text)
    assert r.status_code in (201, 202), r.body[:300]
    assert list(r.json["routes"]) == ["[127.0.0.1:8080]"]


def test_head_answers_without_a_body_on_a_keep_alive_connection(local_api):  # noqa: F811
    """HEAD ran as a route of its own (405) and wrote that body after the headers: the next
    response on the same connection began with those bytes."""
    url = urlsplit(local_api.api_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    auth = {"Authorization": f"Bearer {local_api.token}"}
    try:
        connection.request("HEAD", "/api/v1/info", headers=auth)
        head = connection.getresponse()
        assert head.status == 200 and head.read() == b""
        assert int(head.getheader("Content-Length")) > 0  # the GET's length, as HTTP says
        connection.request("GET", "/api/v1/info", headers=auth)
        get = connection.getresponse()
        assert get.status == 200
        assert json.loads(get.read())["message"].startswith("Hi, I'm Vamp")
        connection.request("HEAD", "/api/v1/nothing-here", headers=auth)
        missing = connection.getresponse()
        assert missing.status in (403, 404) and missing.read() == b""
        connection.request("GET", "/api/v1/info", headers=auth)
        assert connection.getresponse().status == 200
    finally:
        connection.close()
