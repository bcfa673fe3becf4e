"""The DSL fixes of issue 12 through the API: what used to answer 500 is a 400 naming the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def raw_post(api, path: str, text: str):
    """JSON as a client wrote it (json.dumps cannot write 1e400)."""
    return api.client.http.request("POST", path, headers={"Authorization": f"Bearer {api.token}",
                                                          "Content-Type": "application/json"}, body=text.encode())


@pytest.mark.parametrize("value", ['""', "5", '"a/b/c"', '["x", ""]', '"breeds/"'])
def test_malformed_import_is_a_400_and_writes_nothing(api, value):
    r = raw_post(api, "/api/v1/breeds", f'{{"name": "b", "import": {value}, "deployable": "x"}}')
    assert r.status_code == 400, r.body
    assert [e["path"] for e in json.loads(r.body)["errors"]] == ["import"]
    assert api.get("/api/v1/breeds/b").status_code == 404


def test_import_of_a_stored_breed(api):
    assert api.post("/api/v1/breeds", {"name": "sava", "deployable": "x/sava",
                                       "ports": {"webport": "8080/http"}}).status_code == 201
    r = api.post("/api/v1/breeds", yaml_body="name: sava-copy\nimport: breeds/sava\n")
    assert r.status_code == 201, r.body
    assert api.get("/api/v1/breeds/sava-copy").json["ports"] == {"webport": "8080/http"}


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1e308", "9" * 5000])
def test_huge_weight_and_step_are_a_400(api, number):
    gateway = f'{{"name": "g", "port": "9070/http", "routes": {{"[127.0.0.1:8081]": {{"weight": {number}}}}}}}'
    r = raw_post(api, "/api/v1/gateways", gateway)
    assert r.status_code == 400, r.body
    policy = f'{{"name": "p", "steps": [{number}]}}'
    r = raw_post(api, "/api/v1/release-policies", policy)
    assert r.status_code == 400, r.body
    assert api.get("/api/v1/gateways/g").status_code == 404


@pytest.mark.parametrize("kind, name", [("breeds", "breed/breed23"), ("slas", "sla/sla6"),
                                        ("blueprints", "blueprint/blueprint90"), ("workflows", "workflow/workflow10")])
def test_vamp_files_stored_read_back_and_put_back_unchanged(api, kind, name):
    text = (Path(__file__).parent / "vamp_cases" / f"{name}.yml").read_text()
    r = api.post(f"/api/v1/{kind}", yaml_body=text)
    assert r.status_code in (201, 202), r.body
    stored_name = yaml.safe_load(text)["name"]
    first = api.get(f"/api/v1/{kind}/{stored_name}").json
    assert api.put(f"/api/v1/{kind}/{stored_name}", first).status_code in (200, 202)
    assert api.get(f"/api/v1/{kind}/{stored_name}").json == first
