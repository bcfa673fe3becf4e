"""The OpenAPI 3.1 document of the API, generated from the models the handlers validate with
(built on the first GET /openapi.json, never at cold start: docs/decisions/0030).

Every route app.py serves is one operation here (tests/api/test_openapi_routes.py walks both);
every path also exists under /{namespace}/api/v1 (the second server). Request bodies are the
request side of the models (shorthands allowed), responses the response side (the canonical
form, with `kind` and `metadata`): chalicelib/api/schemas.py. Errors are Vamp's
`{"message", "errors": [{"path", "reason"}]}` with the statuses the API really answers.
"""
from __future__ import annotations

from functools import lru_cache

from chalicelib import VERSION, dsl
from chalicelib.api import schemas
from chalicelib.api.http import FALSE as FLAG_FALSE
from chalicelib.api.http import TRUE as FLAG_TRUE
from chalicelib.contract import acknowledgement
from chalicelib.dsl.event import MAX_TAGS
from chalicelib.gateways.telemetry import MAX_WINDOW, METRICS
from chalicelib.kinds import ACCEPTED_KINDS
from chalicelib.store.tokens import ROLES, STORED_ROLES

MEDIA = ("application/json", "application/x-yaml")
ERROR = {"$ref": "#/components/schemas/Error"}
OBJECT = {"type": "object"}

_WHY = {
    400: "invalid input: every problem, each at its field",
    401: "no valid token",
    403: "beyond the token's role or namespaces",
    404: "not found",
    406: "Accept names neither JSON nor YAML",
    409: "a conditional write lost (If-Match, a concurrent writer) or the name is taken",
    413: "body larger than the limit, or a document larger than an item can hold",
    415: "Content-Type is neither JSON nor YAML",
    503: "a backend is busy: retry after Retry-After seconds",
}
# Every operation can answer these: the request's own bounds (400: a query over 4096 characters,
# a flag that is not one, a path name that is not UTF-8), the middleware (401, 403), content
# negotiation (406), a throttled backend (503).
ALWAYS = (400, 401, 403, 406, 503)
BODY = (400, 413, 415)  # every operation that reads a body


def _content(schema: dict) -> dict:
    return {m: {"schema": schema} for m in MEDIA}


def _error(code: int) -> dict:
    out = {"description": _WHY[code], "content": _content(ERROR)}
    if code == 401:
        out["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if code == 503:
        out["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    if code == 409:
        out["content"] = _content({"$ref": "#/components/schemas/Conflict"})
    return out


def _responses(ok: dict[int, dict | None], *errors: int, headers: dict | None = None) -> dict:
    """`ok`: status -> body schema (None: no body)."""
    out: dict = {}
    for code, schema in ok.items():
        out[str(code)] = {"description": "done" if schema is not None else "done, no body"}
        if schema is not None:
            out[str(code)]["content"] = _content(schema)
        if headers:
            out[str(code)]["headers"] = headers
    for code in sorted({*ALWAYS, *errors}):
        out[str(code)] = _error(code)
    return out


def _param(name: str, where: str, schema: dict, required: bool = False, description: str = "") -> dict:
    p = {"name": name, "in": where, "required": required or where == "path", "schema": schema}
    if description:
        p["description"] = description
    return p


def _path(name: str, description: str = "") -> dict:
    return _param(name, "path", {"type": "string", "minLength": 1}, True, description)


def _op(tag: str, summary: str, responses: dict, parameters: list | None = None, body: dict | None = None,
        required_body: bool = True) -> dict:
    op = {"tags": [tag], "summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": required_body, "content": _content(body)}
    return op


FLAG = {**schemas.flag_pattern(sorted(FLAG_TRUE | FLAG_FALSE)),
        "description": "on: true, yes, y, on, 1 or empty; off: false, no, n, off, 0 (any case); else a 400"}


def _flag(name: str, description: str) -> dict:
    return _param(name, "query", FLAG, description=description)


def _paging(per_page_max: int) -> list[dict]:
    from chalicelib.api.pagination import MAX_PAGE

    # Empty: the default (page 1, 30 per page).
    return [_param("page", "query", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, {"const": ""}]}),
            _param("per_page", "query", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": per_page_max},
                                                   {"const": ""}]})]


VALIDATE = _flag("validate_only", "validate, write nothing")
REFS = [_flag("expand_references", "references replaced by the artifacts they name"),
        _flag("only_references", "inline artifacts replaced by references")]
LIST_HEADERS = {"X-Total-Count": {"schema": {"type": "string", "pattern": "^[0-9]+$"}},
                "Link": {"schema": {"type": "string"}, "description": "first, prev, next, last pages"}}
ETAG = {"ETag": {"schema": {"type": "string", "pattern": '^"[0-9]+"$'},
                 "description": "the stored version; send it back as If-Match"}}
IF_MATCH = _param("If-Match", "header", {"type": "string", "pattern": '^(W/)?"?[1-9][0-9]{0,17}"?$'},
                  description="write only if the stored version is this one (an ETag), else 409")


def _list_of(schema: dict) -> dict:
    return {"type": "array", "items": schema}


def _one_or_many(schema: dict) -> dict:
    return {"anyOf": [schema, {**_list_of(schema), "minItems": 1}]}


def _kind_paths(kind: str, request: dict, response: dict, paging: list[dict]) -> dict:
    name = _path("name", "URL-encoded (gateway names: %2F for /)")
    changed = 202 if kind in ACCEPTED_KINDS else None
    return {
        f"/api/v1/{kind}": {
            "get": _op(kind, f"list {kind}", _responses({200: _list_of(response)}, 400, headers=LIST_HEADERS),
                       paging + REFS),
            "post": _op(kind, f"create {kind}: one, a list, or a YAML stream",
                        _responses({changed or 201: _one_or_many(response)}, *BODY, 409, headers=ETAG),
                        [VALIDATE], _one_or_many(schemas.named(request))),
        },
        f"/api/v1/{kind}/{{name}}": {
            "get": _op(kind, f"one of the {kind}", _responses({200: response}, 404, headers=ETAG), [name, *REFS]),
            "put": _op(kind, "create or replace; If-Match makes it conditional",
                       _responses({changed or 200: response}, *BODY, 409, headers=ETAG),
                       [name, VALIDATE, IF_MATCH], request),
            "delete": _op(kind, "delete; If-Match makes it conditional",
                          _responses({changed or 204: None}, 400, 404, 409), [name, VALIDATE, IF_MATCH]),
        },
    }


def _error_schemas() -> dict:
    errors = {"type": "array", "items": {"type": "object", "required": ["path", "reason"], "properties": {
        "path": {"type": "string"}, "reason": {"type": "string"}}}}
    error = {"type": "object", "required": ["message", "errors"],
             "description": "Vamp's error: what went wrong, and every problem at its field",
             "properties": {"message": {"type": "string"}, "errors": errors}}
    conflict = {"allOf": [error, {"type": "object", "properties": {
        "current_version": {"type": ["integer", "null"], "description": "the version stored now"}}}]}
    return {"Error": error, "Conflict": conflict}


def _event_paths(paging: list[dict]) -> dict:
    request_refs, request_defs = schemas.build([dsl.Event], "request")
    tags = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TAGS}
    event = {"type": "object", "required": ["id", "tags", "timestamp", "type"], "properties": {
        "id": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "value": {},
        "timestamp": {"type": "string", "format": "date-time"}, "type": {"type": "string"},
        "posted_by": {"type": "object", "properties": {"name": {"type": "string"}, "role": {"type": "string"},
                                                       "workflow": {"type": "string"}}}}}
    aggregate = {"type": "object", "required": ["value"], "properties": {"value": {"type": ["number", "null"]}}}
    found = _responses({200: {"anyOf": [_list_of(event), aggregate]}}, 400, headers=LIST_HEADERS)
    # What pydantic reads as a datetime: RFC 3339, a date, unix seconds; empty: no bound.
    bound = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"},
                       {"type": "string", "pattern": r"^-?[0-9]{1,10}(\.[0-9]{1,6})?$"}, {"const": ""}]}
    aggregator = {"type": "object", "required": ["type"], "additionalProperties": False, "properties": {
        "type": {"enum": ["min", "max", "average", "sum", "count"]}, "field": {"type": ["string", "null"]}}}
    query_body = {"type": "object", "additionalProperties": False, "properties": {
        "tags": {"anyOf": [tags, {"type": "null"}]}, "type": {"type": ["string", "null"]},
        "timestamp": {"anyOf": [{"type": "object", "additionalProperties": False,
                                 "properties": {op: {"anyOf": [bound, {"type": "null"}]} for op in ("gt", "gte", "lt", "lte")}},
                                {"type": "null"}]},
        "aggregator": {"anyOf": [aggregator, {"type": "null"}]}}}
    query = [_param("tag", "query", tags, description="every tag must match"), _param("type", "query", {"type": "string"}),
             *[_param(op, "query", bound) for op in ("gt", "gte", "lt", "lte")],
             _param("aggregator", "query", {"enum": ["min", "max", "average", "sum", "count"]}),
             _param("field", "query", {"type": "string"}, description="dotted path into value, for aggregator"),
             *paging]
    event_in = request_refs[dsl.Event]
    return request_defs, {
        "/api/v1/events": {
            "get": _op("events", "events, newest first; tags are ANDed", found, query),
            "post": _op("events", "publish one event or a list (telemetry only from agent tokens)",
                        _responses({201: _one_or_many(event)}, *BODY), [VALIDATE], _one_or_many(event_in)),
        },
        "/api/v1/events/get": {"post": _op("events", "query by body", found, query, query_body, required_body=False)},
    }


def _deployment_paths(paging: list[dict], blueprint_in: dict, blueprint_out: dict, scale: tuple, sla: tuple) -> dict:
    from chalicelib.deployments.model import Deployment  # noqa: PLC0415 - pydantic models, as above

    refs, defs = schemas.build([Deployment], "response")
    deployment = refs[Deployment]
    shown = {"anyOf": [deployment, blueprint_out], "description": "the deployment (as_blueprint: as a blueprint)"}
    reference = {"anyOf": [{"type": "string", "minLength": 1}, {
        "type": "object", "properties": {"reference": {"type": "string"}, "ref": {"type": "string"}},
        "minProperties": 1, "maxProperties": 1}], "description": "a stored blueprint's name"}
    body = {"anyOf": [blueprint_in, reference]}
    as_bp = _flag("as_blueprint", "shown as a blueprint")
    name, cluster, service = _path("name"), _path("cluster"), _path("service")
    scale_in, scale_out = scale
    sla_in, sla_out = sla
    return defs, {
        "/api/v1/deployments": {
            "get": _op("deployments", "list deployments", _responses({200: _list_of(shown)}, 400, headers=LIST_HEADERS),
                       [*paging, as_bp]),
            "post": _op("deployments", "deploy a blueprint (inline, or a reference to a stored one)",
                        _responses({202: shown}, *BODY, 409, headers=ETAG), [VALIDATE, as_bp], body),
        },
        "/api/v1/deployments/{name}": {
            "get": _op("deployments", "one deployment", _responses({200: shown}, 404, headers=ETAG), [name, as_bp]),
            "put": _op("deployments", "merge a blueprint into the deployment (delete=true: remove it from it)",
                       _responses({202: shown}, *BODY, 404, 409, headers=ETAG),
                       [name, VALIDATE, as_bp, _flag("delete", "remove what the body names")], body),
            "delete": _op("deployments", "undeploy what the body names (no body: everything)",
                          _responses({202: {"anyOf": [shown, {"type": "null"}]}}, *BODY, 404, 409),
                          [name, VALIDATE, as_bp, _flag("force", "remove the record and gateways now")],
                          body, required_body=False),
        },
        "/api/v1/deployments/{name}/clusters/{cluster}/services/{service}/scale": {
            "get": _op("deployments", "a service's scale", _responses({200: scale_out}, 404), [name, cluster, service]),
            "put": _op("deployments", "set a service's scale", _responses({202: scale_out}, *BODY, 404, 409),
                       [name, cluster, service], scale_in),
        },
        "/api/v1/deployments/{name}/clusters/{cluster}/sla": {
            "get": _op("deployments", "a cluster's SLA", _responses({200: sla_out}, 404), [name, cluster]),
            "post": _op("deployments", "set a cluster's SLA", _responses({202: sla_out}, *BODY, 404, 409),
                        [name, cluster], sla_in),
            "put": _op("deployments", "set a cluster's SLA", _responses({202: sla_out}, *BODY, 404, 409),
                       [name, cluster], sla_in),
            "delete": _op("deployments", "remove a cluster's SLA", _responses({204: None}, 404, 409), [name, cluster]),
        },
    }


def _release_paths() -> dict:
    from chalicelib.releases.operations import ACTIONS  # noqa: PLC0415 - pydantic models, as above

    in_refs, in_defs = schemas.build([dsl.Release], "request")
    release = {"type": "object", "required": ["name", "kind", "id", "phase"], "properties": {
        "name": {"type": "string"}, "kind": {"const": "releases"}, "id": {"type": "string"},
        "spec": OBJECT, "phase": {"type": "string"}, "step": {"type": "integer"}, "weight": {"type": "integer"},
        "interval": {"type": "string"}, "reason": {"type": ["string", "null"]},
        "checks": {"type": "array", "items": OBJECT}}}
    name = _path("name")
    return in_defs, {
        "/api/v1/releases": {
            "post": _op("releases", "start a canary release", _responses({200: release, 202: release}, *BODY, 404, 409),
                        [VALIDATE], in_refs[dsl.Release]),
            "get": _op("releases", "the namespace's releases", _responses({200: _list_of(release)})),
        },
        "/api/v1/releases/{name}": {
            "get": _op("releases", "a release's status", _responses({200: release}, 404), [name]),
            "delete": _op("releases", "forget a finished release", _responses({204: None}, 404, 409), [name]),
        },
        "/api/v1/releases/{name}/{action}": {
            "post": _op("releases", f"act on a release: {', '.join(ACTIONS)}", _responses({202: release}, 404, 409),
                        [name, _param("action", "path", {"type": "string", "minLength": 1},
                                      description=f"one of {', '.join(ACTIONS)}")]),
        },
    }


def _workflow_paths() -> dict:
    # --- workflows (0039): status as Vamp's
    from chalicelib.dsl.workflow import STATUSES  # noqa: PLC0415 - pydantic models, as above
    from chalicelib.workflows.lifecycle import REQUESTS  # noqa: PLC0415

    status = {"type": "string", "enum": list(STATUSES)}
    request = {"anyOf": [{"type": "string", "enum": sorted(REQUESTS)},
                         {"type": "object", "required": ["status"], "additionalProperties": False,
                          "properties": {"status": {"type": "string", "enum": sorted(REQUESTS)}}}]}
    name = _path("name")
    return {"/api/v1/workflows/{name}/status": {
        "get": _op("workflows", "a workflow's status", _responses({200: status}, 404), [name]),
        "put": _op("workflows", "suspend, start or restart a workflow", _responses({202: status}, *BODY, 404, 409),
                   [name], request),
    }}


def _gateway_paths() -> dict:
    window = _param("window", "query", {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
                    description="seconds of telemetry to read")
    gateway, route = _path("gateway", "URL-encoded (%2F for /)"), _path("route")
    metric = _param("metric", "path", {"type": "string", "minLength": 1}, description=f"one of {', '.join(METRICS)}")
    health = {"type": "object", "required": ["value", "window"], "properties": {
        "value": {"type": "number"}, "window": {"type": "integer"}, "reason": {"type": "string"}}}
    value = {"type": "object", "required": ["value", "window"], "properties": {
        "value": {"type": ["number", "null"]}, "window": {"type": "integer"}}}
    ack = {"type": "object", "required": ["status", "sent"], "description": acknowledgement.__doc__, "properties": {
        "node": {"type": "string"}, "namespace": {"type": "string"},
        "generation": {"type": ["integer", "null"], "minimum": 0},
        "checksum": {"type": ["string", "null"]}, "status": {"enum": list(acknowledgement.STATUSES)},
        "message": {"type": ["string", "null"], "maxLength": acknowledgement.MESSAGE_MAX},
        "rejected_generation": {"type": ["integer", "null"]},
        "stage": {"anyOf": [{"enum": list(acknowledgement.STAGES)}, {"type": "null"}]},
        "rejected_gateways": {"type": ["array", "null"], "items": {"type": "string"},
                              "maxItems": acknowledgement.GATEWAYS_MAX},
        "sent": {"type": "number"}, "interval": {"type": "number"}}}
    nodes = {"type": "object", "description": "the namespace's gateway nodes: which generation each runs",
             "properties": {"generation": {"type": "integer"}, "reporting": {"type": "integer"},
                            "applied": {"type": "integer"}, "stale": {"type": "array", "items": {"type": "string"}},
                            "silent": {"type": "array", "items": {"type": "string"}},
                            "nodes": {"type": "array", "items": OBJECT}}}
    configuration = {"type": "object", "required": ["configuration", "generation"], "properties": {
        "configuration": {"type": "string"}, "generation": {"type": "integer"}}}
    text = {"text/plain": {"schema": {"type": "string"}}}
    config_ok = _responses({200: configuration}, 404)
    config_ok["200"]["content"].update(text)
    config_ok["200"]["headers"] = {"X-Vamp-Generation": {"schema": {"type": "string"},
                                                         "description": "with text/plain"}}
    return {
        "/api/v1/health/gateways/{gateway}": {"get": _op(
            "gateways", "a gateway's health (0..1) from its agents' telemetry", _responses({200: health}, 400),
            [gateway, window])},
        "/api/v1/health/gateways/{gateway}/routes/{route}": {"get": _op(
            "gateways", "a route's health", _responses({200: health}, 400), [gateway, route, window])},
        "/api/v1/metrics/gateways/{gateway}/{metric}": {"get": _op(
            "gateways", "a gateway's metric", _responses({200: value}, 400, 404), [gateway, metric, window])},
        "/api/v1/metrics/gateways/{gateway}/routes/{route}/{metric}": {"get": _op(
            "gateways", "a route's metric", _responses({200: value}, 400, 404), [gateway, route, metric, window])},
        "/api/v1/vga/haproxy/{version}/configuration": {"get": _op(
            "gateways", "the HAProxy configuration the namespace's agents apply (Accept: text/plain: as text)",
            config_ok, [_path("version")])},
        "/api/v1/vga/nodes": {"get": _op("gateways", "the namespace's gateway nodes", _responses({200: nodes}))},
        "/api/v1/vga/nodes/{node}": {"put": _op(
            "gateways", "a gateway agent reports what it applied (and a heartbeat)",
            _responses({200: {"type": "object", "properties": {"node": {"type": "string"},
                                                               "generation": {"type": ["integer", "null"]},
                                                               "kept": {"type": "boolean"}}}}, *BODY),
            [_path("node")], ack)},
    }


def _read_side_paths() -> dict:
    # --- the read side (0042): deployments' health and metrics, the event stream
    from chalicelib.api.routes.event_stream import MAX_LIMIT, MAX_WAIT  # noqa: PLC0415

    window = _param("window", "query", {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
                    description="seconds of telemetry to read")
    d, c, s, p = _path("deployment"), _path("cluster"), _path("service"), _path("port", "a cluster gateway port")
    metric = _param("metric", "path", {"type": "string", "minLength": 1}, description=f"one of {', '.join(METRICS)}")
    health = {"type": "object", "required": ["value", "window"], "properties": {
        "value": {"type": "number"}, "window": {"type": "integer"}, "reason": {"type": "string"}}}
    value = {"type": "object", "required": ["value", "window"], "properties": {
        "value": {"type": ["number", "null"]}, "window": {"type": "integer"}}}
    found = _responses({200: health}, 400, 404)
    measured = _responses({200: value}, 400, 404)
    base = "/api/v1/metrics/deployments/{deployment}/clusters/{cluster}"
    # an event id: 48 bits of milliseconds first, so its first character is at most 7
    cursor = {"type": "string", "pattern": "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"}
    answer = {"type": "object", "required": ["events", "cursor", "more"], "properties": {
        "events": {"type": "array", "items": OBJECT, "description": "oldest first"},
        "cursor": {**cursor, "description": "pass as `after` for the next answer"},
        "more": {"type": "boolean", "description": "more events wait: ask again at once"}}}
    stream = _responses({200: answer}, 400)
    stream["200"]["content"]["text/event-stream"] = {"schema": {"type": "string"}, "description": (
        "local stack only, with Accept: text/event-stream: stays open, one `id`/`event`/`data` frame per event")}
    return {
        "/api/v1/health/deployments/{deployment}": {"get": _op(
            "deployments", "a deployment's health: its clusters' multiplied", found, [d, window])},
        "/api/v1/health/deployments/{deployment}/clusters/{cluster}": {"get": _op(
            "deployments", "a cluster's health: its services' multiplied", found, [d, c, window])},
        "/api/v1/health/deployments/{deployment}/clusters/{cluster}/services/{service}": {"get": _op(
            "deployments", "a service's health: 0 after any 5xx on its routes in the window", found, [d, c, s, window])},
        base + "/ports/{port}/{metric}": {"get": _op(
            "deployments", "a cluster port's metric (its internal gateway)", measured, [d, c, p, metric, window])},
        base + "/services/{service}/ports/{port}/{metric}": {"get": _op(
            "deployments", "a service's metric (its route in the cluster port's internal gateway)", measured,
            [d, c, s, p, metric, window])},
        "/api/v1/events/stream": {"get": _op(
            "events", "events after a cursor, as they are stored: a long poll (a stream on the local stack)", stream,
            [_param("tag", "query", {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TAGS},
                    description="every tag must match"),
             _param("type", "query", {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}),
             _param("after", "query", cursor, description="the last answer's cursor (or Last-Event-ID)"),
             _param("wait", "query", {"type": "integer", "minimum": 0, "maximum": MAX_WAIT},
                    description=f"seconds to wait for an event (default {MAX_WAIT})"),
             _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})])},
    }


def _token_paths() -> dict:
    grant = {"role": {"enum": list(ROLES)},
             "namespaces": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                            "description": "namespaces the token may touch, [\"*\"] for all (default: the path's)"}}
    shown = {"type": "object", "required": ["name", "role", "namespaces", "created"],
             "properties": {"name": {"type": "string"}, **grant, "role": {"enum": list(STORED_ROLES)},
                            "created": {"type": "string"},
                            # a workflow run's token (0044): its workflow, and when it expires
                            "workflow": {"type": "string"}, "expires_at": {"type": "integer"}}}
    created = {"allOf": [shown, {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}]}
    body = {"type": "object", "required": ["role"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, **grant}}
    return {
        "/api/v1/tokens": {
            "get": _op("auth", "tokens within the caller's namespaces", _responses({200: _list_of(shown)})),
            "post": _op("auth", "create a token (shown once), no wider than the caller's",
                        _responses({201: created}, *BODY, 409), body=body),
        },
        "/api/v1/tokens/{name}": {"delete": _op("auth", "revoke a token", _responses({204: None}, 404), [_path("name")])},
    }


def _about_paths() -> dict:
    return {f"/api/v1/{p}": {"get": _op("about", what, _responses({200: OBJECT}))} for p, what in (
        ("info", "who answers, and who asks"), ("config", "the settings safe to show"),
        ("openapi.json", "this document"))}


def _root_paths(stream_in: dict, stream_out: dict) -> dict:
    return {"/api/v1": {verb: _op(
        "documents", f"{verb} artifacts of any kinds: a list or a YAML stream, each document with its kind",
        _responses({code: None if verb == "delete" else _list_of(stream_out), 202: None if verb == "delete" else
                    _list_of(stream_out)}, *BODY, 404, 409), [VALIDATE], _one_or_many(stream_in))
        for verb, code in (("post", 201), ("put", 200), ("delete", 204))}}


def _operation_id(method: str, path: str) -> str:
    """`get /api/v1/breeds/{name}` -> `get_breeds_name`."""
    words = [w.strip("{}") for w in path.removeprefix("/api/v1").split("/") if w]
    return "_".join([method, *words]).replace("-", "_").replace(".", "_") if words else f"{method}_root"


# Where a created resource can be read, changed and deleted: OpenAPI links for the stateful
# phase of a schemathesis run (create, then read, update, delete what was created).
def _links(paths: dict) -> None:
    named = {p.removesuffix("/{name}"): p for p in paths if p.endswith("/{name}")}
    for collection, item in named.items():
        created = paths.get(collection, {}).get("post")
        targets = {m: _operation_id(m, item) for m in ("get", "put", "delete") if m in paths[item]}
        sources = [created] if created else []
        sources += [paths[item][m] for m in ("put",) if m in paths[item]]
        for source in sources:
            for code, response in source["responses"].items():
                if not code.startswith("2") or "content" not in response:
                    continue
                response["links"] = {f"{m.capitalize()}Created": {
                    "operationId": target, "parameters": {"name": "$response.body#/name"}}
                    for m, target in targets.items()}
                if "ETag" in response.get("headers", {}) and "delete" in targets and any(
                        p["name"] == "If-Match" for p in paths[item]["delete"].get("parameters", [])):
                    response["links"]["DeleteCreatedIfUnchanged"] = {"operationId": targets["delete"], "parameters": {
                        "name": "$response.body#/name", "header.If-Match": "$response.header.ETag"}}


@lru_cache(maxsize=1)
def document() -> dict:
    from chalicelib.settings import settings

    per_page_max = settings().per_page_max
    paging = _paging(per_page_max)
    models = list(dsl.KINDS.values())
    in_refs, in_defs = schemas.build(models, "request")
    out_refs, out_defs = schemas.build(models, "response")
    defs = {**in_defs, **out_defs, **_error_schemas()}
    paths: dict = {}
    responses = {}
    for kind, model in dsl.KINDS.items():
        responses[kind] = schemas.artifact_response(out_refs[model], kind)
        paths.update(_kind_paths(kind, in_refs[model], responses[kind], paging))
    stream_in = {"anyOf": [{"allOf": [schemas.named(in_refs[m]), {
        "type": "object", "required": ["kind"], "properties": {"kind": schemas.kind_pattern(sorted({kind, kind[:-1], dsl.document.singular(kind)}))}}]}
        for kind, m in dsl.KINDS.items()]}
    stream_out = {"anyOf": list(responses.values())}
    paths.update(_root_paths(stream_in, stream_out))
    event_defs, event_paths = _event_paths(paging)
    defs.update(event_defs)
    paths.update(event_paths)
    scale_out = {"$ref": "#/components/schemas/Scale"}
    sla_out = {"anyOf": [{"$ref": "#/components/schemas/Sla"}, {"$ref": "#/components/schemas/SlaRef"}]}
    sla_in = {"anyOf": [in_refs[dsl.Sla], {"type": "string"}, {"type": "object", "required": ["reference"]}]}
    deployment_defs, deployment_paths = _deployment_paths(
        paging, in_refs[dsl.Blueprint], responses["blueprints"], (in_refs[dsl.Scale], scale_out), (sla_in, sla_out))
    defs.update({k: v for k, v in deployment_defs.items() if k not in defs})
    paths.update(deployment_paths)
    release_defs, release_paths = _release_paths()
    defs.update({k: v for k, v in release_defs.items() if k not in defs})
    paths.update(release_paths)
    paths.update(_workflow_paths())
    paths.update(_gateway_paths())
    paths.update(_read_side_paths())
    paths.update(_token_paths())
    paths.update(_about_paths())
    for path, item in paths.items():
        for method, op in item.items():
            op["operationId"] = _operation_id(method, path)
    _links(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "vamp-serverless", "version": VERSION,
                 "description": "Vamp's /api/v1. Every path also exists under /{namespace}/api/v1 (the second server)."},
        "servers": [{"url": "/"}, {"url": "/{namespace}", "variables": {"namespace": {
            "default": "default", "description": "lowercase letters, digits and '-', at most 63 characters"}}}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(defs.items())),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
