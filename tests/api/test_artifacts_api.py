"""The artifact API end to end: chalice's test client -> app -> DynamoDB on moto's server."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SAVA = (Path(__file__).resolve().parents[2] / "examples" / "sava.yaml").read_text()
BREED = {"name": "sava:1.0.0", "deployable": "magneticio/sava:1.0.0", "ports": {"webport": "8080/http"}}


def test_store_and_read_vamps_sample_yaml(api):
    r = api.post("/api/v1", yaml_body=SAVA)
    assert r.status_code == 201, r.body
    assert [d["name"] for d in r.json] == ["sava:1.0.0", "sava:1.1.0", "small", "sava"]
    r = api.get("/api/v1/blueprints/sava", headers={"Accept": "application/x-yaml"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-yaml"
    assert r.yaml["name"] == "sava" and "sava" in r.yaml["clusters"]
    breed = api.get("/api/v1/breeds/sava:1.0.0").json
    assert breed["deployable"] == {"type": "container/docker", "definition": "magneticio/sava:1.0.0"}
    assert breed["ports"]["webport"].startswith("8080")


def test_create_get_update_delete_with_vamp_status_codes(api):
    assert api.post("/api/v1/breeds", BREED).status_code == 201
    got = api.get("/api/v1/breeds/sava:1.0.0")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    changed = {**BREED, "environment_variables": {"A": "1"}}
    r = api.put("/api/v1/breeds/sava:1.0.0", changed)
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    assert api.get("/api/v1/breeds/sava:1.0.0").json["environment_variables"] == {"A": "1"}
    assert api.delete("/api/v1/breeds/sava:1.0.0").status_code == 204
    assert api.get("/api/v1/breeds/sava:1.0.0").status_code == 404


def test_gateways_and_workflows_answer_202(api):
    gateway = {"name": "web", "port": "9070/http", "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}}
    assert api.post("/api/v1/gateways", gateway).status_code == 202
    assert api.put("/api/v1/gateways/web", gateway).status_code == 202
    assert api.delete("/api/v1/gateways/web").status_code == 202  # Vamp: 202 for gateways
    assert api.get("/api/v1/gateways/web").status_code == 404


def test_gateway_names_with_slashes_are_url_encoded(api):
    gateway = {"name": "sava/9050", "port": "9050/http", "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}}
    assert api.post("/api/v1/gateways", gateway).status_code == 202
    r = api.get("/api/v1/gateways/sava%2F9050")
    assert r.status_code == 200 and r.json["name"] == "sava/9050"


def test_create_existing_is_409_and_stale_if_match_is_409_with_current_version(api):
    api.post("/api/v1/breeds", BREED)
    r = api.post("/api/v1/breeds", BREED)
    assert r.status_code == 409 and r.json["current_version"] == 1
    api.put("/api/v1/breeds/sava:1.0.0", BREED, headers={"If-Match": '"1"'})
    r = api.put("/api/v1/breeds/sava:1.0.0", BREED, headers={"If-Match": '"1"'})
    assert r.status_code == 409
    assert r.json["current_version"] == 2 and r.json["errors"][0]["path"] == "version"


def test_invalid_input_is_400_with_path_and_reason_and_writes_nothing(api):
    stream = SAVA + "\n---\nkind: breeds\nname: broken\ndeployable: x\nports: {web: 'notaport'}\n"
    r = api.post("/api/v1", yaml_body=stream)
    assert r.status_code == 400
    assert r.json["message"] and all({"path", "reason"} <= set(e) for e in r.json["errors"])
    assert any(e["path"].startswith("[4].ports") for e in r.json["errors"]), r.json
    assert api.get("/api/v1/breeds").headers["X-Total-Count"] == "0"
    assert api.get("/api/v1/events?tag=archive").json == []


def test_unknown_keys_are_rejected(api):
    r = api.post("/api/v1/breeds", {**BREED, "colour": "blue"})
    assert r.status_code == 400 and any("colour" in e["path"] for e in r.json["errors"])


def test_name_in_path_must_match_the_body(api):
    r = api.put("/api/v1/breeds/other", BREED)
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "name"


def test_validate_only_writes_nothing(api):
    r = api.post("/api/v1/breeds?validate_only=true", BREED)
    assert r.status_code == 201 and r.json["name"] == "sava:1.0.0"
    assert api.get("/api/v1/breeds/sava:1.0.0").status_code == 404
    assert api.post("/api/v1?validate_only=true", yaml_body=SAVA).status_code == 201
    assert api.get("/api/v1/blueprints").json == []


def test_pagination_headers(api):
    for i in range(7):
        api.post("/api/v1/breeds", {**BREED, "name": f"b{i}"})
    r = api.get("/api/v1/breeds?page=2&per_page=3")
    assert [b["name"] for b in r.json] == ["b3", "b4", "b5"]
    assert r.headers["X-Total-Count"] == "7"
    link = r.headers["Link"]
    for rel, page in (("first", 1), ("prev", 1), ("next", 3), ("last", 3)):
        assert f"page={page}&per_page=3>; rel=\"{rel}\"" in link, link
    assert api.get("/api/v1/breeds?page=0").status_code == 400


def test_expand_and_only_references(api):
    api.post("/api/v1", yaml_body=SAVA)
    expanded = api.get("/api/v1/blueprints/sava?expand_references=true").json
    service = expanded["clusters"]["sava"]["services"][1]
    assert isinstance(service["breed"], dict) and service["breed"]["name"] == "sava:1.1.0"
    assert isinstance(service["scale"], dict) and service["scale"]["cpu"] == 0.2
    only = api.get("/api/v1/blueprints/sava?only_references=true").json
    assert only["clusters"]["sava"]["services"][1]["scale"] in ("small", {"reference": "small"}, {"ref": "small"})


def test_root_put_and_delete(api):
    assert api.post("/api/v1", yaml_body=SAVA).status_code == 201
    assert api.put("/api/v1", yaml_body=SAVA).status_code == 200
    assert api.get("/api/v1/breeds/sava:1.0.0").headers["ETag"] == '"2"'
    assert api.delete("/api/v1", yaml_body=SAVA).status_code == 204
    assert api.get("/api/v1/breeds").json == []


def test_documents_without_kind_in_the_root_stream(api):
    r = api.post("/api/v1", yaml_body="name: x\ndeployable: y\n")
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "[0].kind"


def test_namespaces_are_apart(api):
    assert api.post("/team-a/api/v1/breeds", BREED).status_code == 201
    assert api.get("/team-a/api/v1/breeds/sava:1.0.0").status_code == 200
    assert api.get("/api/v1/breeds/sava:1.0.0").status_code == 404
    assert api.get("/Bad_NS/api/v1/breeds").status_code == 400


def test_unknown_kind_is_404(api):
    assert api.get("/api/v1/unicorns").status_code == 404


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data"])
def test_unsupported_media_type_is_415(api, content_type):
    r = api.request("POST", "/api/v1/breeds", BREED, headers={"Content-Type": content_type})
    assert r.status_code == 415 and r.json["errors"][0]["path"] == "Content-Type"


def test_body_size_limit_is_413(api, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_MAX_BODY_BYTES", "1000")
    settings.cache_clear()
    try:
        r = api.post("/api/v1/breeds", {**BREED, "environment_variables": {"X": "y" * 2000}})
    finally:
        monkeypatch.delenv("VAMP_MAX_BODY_BYTES")
        settings.cache_clear()
    assert r.status_code == 413


def test_malformed_bodies_are_400(api):
    r = api.request("POST", "/api/v1/breeds", headers={"Content-Type": "application/json"}, yaml_body=None)
    assert r.status_code == 400  # empty body: no document
    r = api.client.http.request("POST", "/api/v1/breeds", headers={
        "Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}, body=b"{nope")
    assert r.status_code == 400 and b"invalid JSON" in r.body
    r = api.post("/api/v1/breeds", yaml_body="name: [unclosed")
    assert r.status_code == 400


def test_not_acceptable(api):
    assert api.get("/api/v1/info", headers={"Accept": "text/html"}).status_code == 406


def test_every_change_is_archived(api):
    api.post("/api/v1/breeds", BREED)
    api.put("/api/v1/breeds/sava:1.0.0", BREED)
    api.delete("/api/v1/breeds/sava:1.0.0")
    events = api.get("/api/v1/events?tag=breeds:sava:1.0.0").json
    actions = sorted(t for e in events for t in e["tags"] if t.startswith("archive:"))
    assert actions == ["archive:create", "archive:delete", "archive:update"]
    create = next(e for e in events if "archive:create" in e["tags"])
    assert yaml.safe_load(create["value"])["name"] == "sava:1.0.0"


def _first_ref(schema: dict) -> str:
    # A body schema is the model's $ref, possibly narrowed by an allOf (a required name).
    if "$ref" in schema:
        return schema["$ref"]
    return next(_first_ref(part) for part in schema["allOf"])


def test_info_config_and_openapi(api):
    info = api.get("/api/v1/info").json
    assert info["message"].startswith("Hi, I'm Vamp") and info["auth"]["principal"] == "tests"
    assert api.get("/api/v1/config").json["vamp"]["persistence"]["database"]["type"] == "dynamodb"
    doc = api.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/breeds/{name}" in doc["paths"] and "/api/v1/events" in doc["paths"]
    schemas = doc["components"]["schemas"]
    one_or_many = doc["paths"]["/api/v1/breeds"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    breed_ref = _first_ref(one_or_many["anyOf"][0])  # one breed, or a list of them
    assert breed_ref.rsplit("/", 1)[-1] in schemas


def test_openapi_documents_the_event_body(api):
    # An event is tags + value (+ type, timestamp): the document must say so, not "an object".
    doc = api.get("/api/v1/openapi.json").json
    one_or_many = doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref = _first_ref(one_or_many["anyOf"][0])  # one event, or a list of them
    event = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"tags", "value"} <= set(event["properties"])
