"""The served OpenAPI document describes every route app.py serves, and nothing else; request and
response schemas are the models' two sides (docs/decisions/0030)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import app
from chalicelib.kinds import KINDS

PREFIXES = ("/{namespace}/api/v1", "/api/v1")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def served_operations() -> set[tuple[str, str]]:
    """(document path, method) for every route of app.py: both prefixes are the document's two
    servers, `/{kind}` is one path per kind."""
    out = set()
    for path, methods in app.app.routes.items():
        prefix = next(p for p in PREFIXES if path.startswith(p))
        rest = path[len(prefix):]
        paths = [rest.replace("{kind}", kind) for kind in KINDS] if rest.startswith("/{kind}") else [rest]
        for method in methods:
            out |= {("/api/v1" + p, method.lower()) for p in paths}
    return out


def documented_operations(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in METHODS}


def test_every_route_is_documented_and_nothing_else(api):
    doc = api.get("/api/v1/openapi.json").json
    served, documented = served_operations(), documented_operations(doc)
    assert served - documented == set()
    assert documented - served == set()
    assert len(served) == 103  # 12 kinds x 5 and 43 others (2 workflows, 0039; 6 read side, 0042): a route added to app.py shows here


def test_every_namespaced_route_has_its_unprefixed_twin():
    unprefixed = {p[len("/api/v1"):] for p in app.app.routes if p.startswith("/api/v1")}
    namespaced = {p[len("/{namespace}/api/v1"):] for p in app.app.routes if p.startswith("/{namespace}/")}
    assert unprefixed == namespaced
    doc = __import__("chalicelib.api.openapi", fromlist=["document"]).document()
    assert [s["url"] for s in doc["servers"]] == ["/", "/{namespace}"]


@pytest.fixture(scope="module")
def doc():
    from chalicelib.api.openapi import document

    return document()


def _resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_requests_and_responses_are_separate_schemas(doc):
    put = doc["paths"]["/api/v1/scales/{name}"]["put"]
    request = put["requestBody"]["content"]["application/json"]["schema"]
    response = doc["paths"]["/api/v1/scales/{name}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    scale_in = _resolve(doc, request)
    assert scale_in["additionalProperties"] is False  # the DSL refuses unknown keys
    assert scale_in["properties"]["memory"]["type"] == ["string", "number"]  # 256MB, 256, 0.25GB
    scale_out = _resolve(doc, response["allOf"][0])
    assert "additionalProperties" not in scale_out
    assert scale_out["properties"]["memory"]["type"] == "string"  # "256MB"
    assert response["allOf"][1]["properties"]["kind"] == {"const": "scales"}
    assert set(response["allOf"][1]["required"]) == {"name", "kind", "metadata"}


def test_errors_headers_and_media_types_are_documented(doc):
    put = doc["paths"]["/api/v1/breeds/{name}"]["put"]
    assert {"400", "401", "403", "406", "409", "413", "415", "503"} <= set(put["responses"])
    assert put["responses"]["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Conflict"}
    assert "ETag" in put["responses"]["200"]["headers"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in put["parameters"])
    assert set(put["requestBody"]["content"]) == {"application/json", "application/x-yaml"}
    assert "Retry-After" in put["responses"]["503"]["headers"]
    assert "WWW-Authenticate" in put["responses"]["401"]["headers"]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["message", "errors"]
    listing = doc["paths"]["/api/v1/deployments"]["get"]["responses"]["200"]
    assert set(listing["headers"]) == {"X-Total-Count", "Link"}


def test_the_document_is_valid_openapi(doc):
    from schemathesis.openapi import from_dict

    operations = [r.ok() for r in from_dict(doc).get_all_operations()]  # raises on an invalid one
    assert len(operations) == 103
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(set(ids)) == len(ids) == 103  # links name their targets by operationId
    links = doc["paths"]["/api/v1/breeds"]["post"]["responses"]["201"]["links"]
    assert links["GetCreated"] == {"operationId": "get_breeds_name", "parameters": {"name": "$response.body#/name"}}


def test_import_app_builds_no_document():
    """The document (and the pydantic models behind it) is built on the first GET, not at cold start."""
    code = ("import sys, app; bad = [m for m in ('chalicelib.api.openapi', 'chalicelib.api.schemas', 'pydantic.json_schema')"
            " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=app.__file__.rsplit("/", 1)[0])
    assert result.returncode == 0, result.stdout + result.stderr
