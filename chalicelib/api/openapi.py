"""The OpenAPI 3.1 document of the API, generated from the DSL models (built on first request)."""
from __future__ import annotations

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from chalicelib import VERSION, dsl
from chalicelib.kinds import ACCEPTED_KINDS
from chalicelib.store.event_store import EventQuery
from chalicelib.store.tokens import ROLES

ERROR = {"$ref": "#/components/schemas/Error"}
MEDIA = ("application/json", "application/x-yaml")


def _content(schema: dict) -> dict:
    return {m: {"schema": schema} for m in MEDIA}


def _responses(ok: int, schema: dict | None, *errors: int, headers: dict | None = None) -> dict:
    out: dict = {str(ok): {"description": "done"}}
    if schema is not None:
        out[str(ok)]["content"] = _content(schema)
    if headers:
        out[str(ok)]["headers"] = headers
    for code in (401, 403, *errors):
        out[str(code)] = {"description": {400: "invalid input", 401: "no valid token",
                                          403: "beyond the token's role or namespaces", 404: "not found",
                                          409: "stale write or exists", 413: "body too large",
                                          415: "unsupported media type"}[code], "content": _content(ERROR)}
    return out


def _param(name: str, where: str, schema: dict, required: bool = False, description: str = "") -> dict:
    p = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        p["description"] = description
    return p


PAGING = [_param("page", "query", {"type": "integer", "minimum": 1}),
          _param("per_page", "query", {"type": "integer", "minimum": 1})]
VALIDATE = _param("validate_only", "query", {"type": "boolean"}, description="validate, write nothing")
REFS = [_param("expand_references", "query", {"type": "boolean"}),
        _param("only_references", "query", {"type": "boolean"})]
LIST_HEADERS = {"X-Total-Count": {"schema": {"type": "integer"}}, "Link": {"schema": {"type": "string"}}}


def _kind_paths(kind: str, model_ref: dict) -> dict:
    name = _param("name", "path", {"type": "string"}, True, "URL-encoded (gateway names: %2F for /)")
    body = {"required": True, "content": _content(model_ref)}
    changed = 202 if kind in ACCEPTED_KINDS else None
    return {
        f"/api/v1/{kind}": {
            "get": {"tags": [kind], "summary": f"list {kind}", "parameters": PAGING + REFS,
                    "responses": _responses(200, {"type": "array", "items": model_ref}, 400, headers=LIST_HEADERS)},
            "post": {"tags": [kind], "summary": f"create {kind} (one, a list, or a YAML stream)",
                     "parameters": [VALIDATE], "requestBody": body,
                     "responses": _responses(changed or 201, model_ref, 400, 409, 413, 415)},
        },
        f"/api/v1/{kind}/{{name}}": {
            "get": {"tags": [kind], "parameters": [name, *REFS], "responses": _responses(200, model_ref, 404)},
            "put": {"tags": [kind], "summary": "create or replace; If-Match makes it conditional",
                    "parameters": [name, VALIDATE, _param("If-Match", "header", {"type": "string"})],
                    "requestBody": body, "responses": _responses(changed or 200, model_ref, 400, 409, 413, 415)},
            "delete": {"tags": [kind], "parameters": [name, VALIDATE],
                       "responses": _responses(changed or 204, None, 404, 409)},
        },
    }


@lru_cache(maxsize=1)
def document() -> dict:
    models = [(m, "validation") for m in dsl.KINDS.values()]
    models += [(dsl.Event, "validation"), (EventQuery, "validation")]
    refs, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    defs = schemas.get("$defs", {})
    defs["Error"] = {
        "type": "object", "required": ["message", "errors"],
        "properties": {"message": {"type": "string"}, "errors": {"type": "array", "items": {
            "type": "object", "properties": {"path": {"type": "string"}, "reason": {"type": "string"}}}}},
    }
    paths: dict = {}
    for kind, model in dsl.KINDS.items():
        paths.update(_kind_paths(kind, refs[(model, "validation")]))
    any_doc = {"type": "array", "items": {"type": "object", "required": ["kind", "name"]}}
    paths["/api/v1"] = {
        verb: {"tags": ["documents"], "summary": f"{verb} a multi-document stream; each document has a kind",
               "parameters": [VALIDATE], "requestBody": {"required": True, "content": _content(any_doc)},
               "responses": _responses(code, None if verb == "delete" else any_doc, 400, 409, 413, 415)}
        for verb, code in (("post", 201), ("put", 200), ("delete", 204))
    }
    event_ref = refs[(dsl.Event, "validation")]
    paths["/api/v1/events"] = {
        "get": {"tags": ["events"], "summary": "events, newest first; tags are ANDed",
                "parameters": [_param("tag", "query", {"type": "array", "items": {"type": "string"}}),
                               _param("type", "query", {"type": "string"}),
                               *[_param(op, "query", {"type": "string", "format": "date-time"}) for op in ("gt", "gte", "lt", "lte")],
                               _param("aggregator", "query", {"enum": ["min", "max", "average", "sum", "count"]}),
                               _param("field", "query", {"type": "string"}), *PAGING],
                "responses": _responses(200, {"type": "array", "items": event_ref}, 400, headers=LIST_HEADERS)},
        "post": {"tags": ["events"], "summary": "publish one event or a list",
                 "requestBody": {"required": True, "content": _content(event_ref)},
                 "responses": _responses(201, event_ref, 400, 413, 415)},
    }
    paths["/api/v1/events/get"] = {"post": {
        "tags": ["events"], "summary": "query by body: {tags, type, timestamp: {lt, lte, gt, gte}, aggregator}",
        "requestBody": {"content": _content(refs[(EventQuery, "validation")])},
        "responses": _responses(200, {"type": "array", "items": event_ref}, 400)}}
    grant = {"role": {"enum": list(ROLES)},
             "namespaces": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                            "description": "namespaces the token may touch, [\"*\"] for all (default: the path's)"}}
    token_schema = {"type": "object", "properties": {"name": {"type": "string"}, **grant, "created": {"type": "string"},
                                                      "token": {"type": "string"}}}
    paths["/api/v1/tokens"] = {
        "get": {"tags": ["auth"], "summary": "tokens within the caller's namespaces",
                "responses": _responses(200, {"type": "array", "items": token_schema})},
        "post": {"tags": ["auth"], "summary": "create a token (shown once), no wider than the caller's",
                 "requestBody": {"content": _content({"type": "object", "required": ["name", "role"],
                                                      "properties": {"name": {"type": "string"}, **grant}})},
                 "responses": _responses(201, token_schema, 400, 409)},
    }
    paths["/api/v1/tokens/{name}"] = {"delete": {"tags": ["auth"], "parameters": [
        _param("name", "path", {"type": "string"}, True)], "responses": _responses(204, None, 404)}}
    ack_schema = {"type": "object", "required": ["status", "sent"], "description": (
        "a gateway agent's acknowledgement (chalicelib/contract/acknowledgement.py): sent after every "
        "apply and as a heartbeat"), "properties": {
        "node": {"type": "string"}, "namespace": {"type": "string"},
        "generation": {"type": ["integer", "null"], "minimum": 0, "description": "the generation served"},
        "checksum": {"type": ["string", "null"], "description": "sha256:<hex> of the configuration served"},
        "status": {"enum": ["applied", "rejected", "pending"]},
        "message": {"type": ["string", "null"], "description": "why HAProxy rejected the newest configuration"},
        "rejected_generation": {"type": ["integer", "null"]},
        "sent": {"type": "number", "description": "the agent's clock, epoch seconds"},
        "interval": {"type": "number", "description": "seconds between heartbeats"}}}
    nodes_schema = {"type": "object", "description": "the namespace's gateway nodes (also `nodes` in GET /gateways/{name}, read-only)",
                    "properties": {"generation": {"type": "integer"}, "reporting": {"type": "integer"},
                                   "applied": {"type": "integer"},
                                   "stale": {"type": "array", "items": {"type": "string"}},
                                   "silent": {"type": "array", "items": {"type": "string"}},
                                   "nodes": {"type": "array", "items": {"type": "object"}}}}
    paths["/api/v1/vga/nodes"] = {"get": {
        "tags": ["gateways"], "summary": "which generation each gateway node runs; stale and silent nodes",
        "responses": _responses(200, nodes_schema)}}
    paths["/api/v1/vga/nodes/{node}"] = {"put": {
        "tags": ["gateways"], "summary": "a gateway agent reports what it applied (and a heartbeat)",
        "parameters": [_param("node", "path", {"type": "string"}, True)],
        "requestBody": {"required": True, "content": _content(ack_schema)},
        "responses": _responses(200, {"type": "object"}, 400, 413, 415)}}
    for p in ("info", "config", "openapi.json"):
        paths[f"/api/v1/{p}"] = {"get": {"tags": ["about"], "responses": _responses(200, {"type": "object"})}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "vamp-serverless", "version": VERSION,
                 "description": "Vamp's /api/v1. Every path also exists under /{namespace}/api/v1."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
