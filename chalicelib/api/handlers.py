"""One function per API operation: a `Call` in, a `Reply` out. app.py only routes to these."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from chalicelib import artifacts
from chalicelib.api import pagination
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.artifacts import Document
from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.kinds import kind_in_path, normalize_kind
from chalicelib.settings import settings

VERSION = "0.1.0"
STARTED = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
# Vamp answers 202 for kinds whose change sets something in motion.
ACCEPTED_KINDS = {"gateways", "workflows"}


def _artifact_store():
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    return DynamoDBArtifactStore()


def _publish(namespace: str, events: list[dict]) -> None:
    from chalicelib.store.event_backend import event_store

    event_store().publish(namespace, events)


_kind = kind_in_path


def _expected_version(call: Call) -> int | None:
    raw = call.header("if-match")
    if raw is None:
        return None
    try:
        version = int(raw.strip().strip('W/').strip('"'))
        if version < 1:
            raise ValueError
        return version
    except ValueError:
        raise ValidationFailed.at("If-Match", "an artifact version (ETag) such as \"3\"") from None


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _status(kind: str, static: int) -> int:
    return 202 if kind in ACCEPTED_KINDS else static


def _body(outcomes: list[artifacts.Outcome], many: bool):
    docs = [o.document for o in outcomes]
    return docs if many else docs[0]


def _single_headers(outcomes: list[artifacts.Outcome]) -> dict[str, str]:
    if len(outcomes) == 1 and outcomes[0].artifact is not None:
        return _etag(outcomes[0].artifact.version)
    return {}


# -- artifacts by kind -----------------------------------------------------------------------

def list_artifacts(call: Call, kind: str) -> Reply:
    kind = _kind(kind)
    page, per_page = pagination.page_params(call.query, settings().per_page_max)
    store = _artifact_store()
    result = artifacts.list_page(store, call.namespace, kind, page, per_page)
    expand, only = call.flag("expand_references"), call.flag("only_references")
    body = [artifacts.shape(store, call.namespace, kind, a.document, expand=expand, only=only) for a in result.items]
    return Reply(200, body, pagination.page_headers(call.path, call.query, page, per_page, result.total))


def get_artifact(call: Call, kind: str, name: str) -> Reply:
    kind, name = _kind(kind), decoded_name(name)
    store = _artifact_store()
    found = artifacts.get(store, call.namespace, kind, name)
    body = artifacts.shape(store, call.namespace, kind, found.document,
                           expand=call.flag("expand_references"), only=call.flag("only_references"))
    return Reply(200, body, _etag(found.version))


def create_artifacts(call: Call, kind: str) -> Reply:
    kind = _kind(kind)
    docs = call.documents()
    many = len(docs) != 1
    documents = [Document(kind, d, f"[{i}]" if many else "") for i, d in enumerate(docs)]
    outcomes = artifacts.change(_artifact_store(), _publish, call.namespace, documents, "create",
                                validate_only=call.flag("validate_only"))
    return Reply(_status(kind, 201), _body(outcomes, many), _single_headers(outcomes))


def update_artifact(call: Call, kind: str, name: str) -> Reply:
    kind, name = _kind(kind), decoded_name(name)
    docs = call.documents()
    if len(docs) != 1:
        raise ValidationFailed.at("body", f"exactly one document expected, got {len(docs)}")
    data = docs[0]
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": name}  # Vamp lets the path name the artifact
    outcomes = artifacts.change(_artifact_store(), _publish, call.namespace, [Document(kind, data)], "upsert",
                                validate_only=call.flag("validate_only"), url_name=name,
                                expected_version=_expected_version(call))
    return Reply(_status(kind, 200), outcomes[0].document, _single_headers(outcomes))


def delete_artifact(call: Call, kind: str, name: str) -> Reply:
    kind, name = _kind(kind), decoded_name(name)
    artifacts.change(_artifact_store(), _publish, call.namespace, [Document(kind, {"name": name})], "delete",
                     validate_only=call.flag("validate_only"), expected_version=_expected_version(call))
    return Reply(_status(kind, 204), None)


# -- the multi-document root /api/v1 ---------------------------------------------------------

def _root_documents(call: Call) -> list[Document]:
    docs = call.documents()
    out, errors = [], []
    for i, d in enumerate(docs):
        kind = d.get("kind") if isinstance(d, dict) else None
        if not isinstance(kind, str):
            errors.append(FieldError(f"[{i}].kind", "every document of a stream needs a kind"))
            continue
        try:
            normalize_kind(kind)
        except ValidationFailed as e:
            errors += [FieldError(f"[{i}].kind", x.reason) for x in e.errors]
            continue
        out.append(Document(kind, d, f"[{i}]"))
    if errors:
        raise ValidationFailed("Invalid input", errors)
    return out


def root_change(call: Call, mode: artifacts.Mode) -> Reply:
    documents = _root_documents(call)
    if mode == "delete":
        documents = [Document(d.kind, {"name": d.data.get("name")}, d.path) for d in documents]
    outcomes = artifacts.change(_artifact_store(), _publish, call.namespace, documents, mode,
                                validate_only=call.flag("validate_only"))
    kinds = {o.kind for o in outcomes}
    static = {"create": 201, "upsert": 200, "delete": 204}[mode]
    status = 202 if kinds & ACCEPTED_KINDS else static
    return Reply(status, None if mode == "delete" else [o.document for o in outcomes])


# -- events ----------------------------------------------------------------------------------

def _event_query(call: Call, body: dict | None):
    from chalicelib.store.event_store import Aggregator, EventQuery

    page, per_page = pagination.page_params(call.query, settings().per_page_max)
    spec: dict = {"page": page, "per_page": per_page, "tags": call.multi_query.get("tag", [])}
    if call.query.get("type"):
        spec["type"] = call.query["type"]
    for op in ("gt", "gte", "lt", "lte"):
        if call.query.get(op):
            spec[op] = call.query[op]
    aggregator = None
    if call.query.get("aggregator"):
        aggregator = {"type": call.query["aggregator"], "field": call.query.get("field")}
    if body:
        if not isinstance(body, dict):
            raise ValidationFailed.at("body", "an event query is a map: {tags, type, timestamp, aggregator}")
        unknown = set(body) - {"tags", "type", "timestamp", "aggregator"}
        if unknown:
            raise ValidationFailed("Invalid query", [FieldError(k, "unknown field") for k in sorted(unknown)])
        spec["tags"] = spec["tags"] + list(body.get("tags") or [])
        if body.get("type"):
            spec["type"] = body["type"]
        spec.update(body.get("timestamp") or {})
        aggregator = body.get("aggregator") or aggregator
    try:
        query = EventQuery(**spec)
        agg = Aggregator(**aggregator) if aggregator else None
    except (TypeError, ValueError) as e:
        raise _pydantic_error(e) from None
    return query, agg


def _pydantic_error(e: Exception) -> ValidationFailed:
    errors = getattr(e, "errors", None)
    if callable(errors):
        return ValidationFailed("Invalid query", [
            FieldError(".".join(str(p) for p in err["loc"]) or "query", err["msg"]) for err in errors()
        ])
    return ValidationFailed.at("query", str(e))


def query_events(call: Call, body: dict | None = None) -> Reply:
    from chalicelib.store.event_backend import event_store

    query, agg = _event_query(call, body)
    store = event_store()
    if agg:
        return Reply(200, {"value": store.aggregate(call.namespace, query, agg)})
    page = store.query(call.namespace, query)
    return Reply(200, page.items, pagination.page_headers(call.path, call.query, query.page, query.per_page, page.total))


def query_events_body(call: Call) -> Reply:
    docs = call.documents()
    return query_events(call, docs[0] if docs else None)


def publish_events(call: Call) -> Reply:
    from chalicelib import dsl
    from chalicelib.store.event_store import new_event
    from chalicelib.store.event_backend import event_store

    docs = call.documents()
    many = len(docs) != 1
    events, errors = [], []
    for i, d in enumerate(docs):
        try:
            e = dsl.parse_event(d)
        except ValidationFailed as err:
            prefix = f"[{i}]." if many else ""
            errors += [FieldError(prefix + x.path, x.reason) for x in err.errors]
            continue
        events.append(new_event(tags=list(e.tags), value=e.value, type=e.type, timestamp=e.timestamp))
    if not docs:
        errors.append(FieldError("body", "no event given"))
    if errors:
        raise ValidationFailed("Invalid event", errors)
    if not call.flag("validate_only"):
        event_store().publish(call.namespace, events)
    return Reply(201, events if many else events[0])


# -- tokens ----------------------------------------------------------------------------------

def _token_view(p) -> dict:
    return {"name": p.name, "created": p.created}


def list_tokens(call: Call) -> Reply:
    from chalicelib.store.tokens import DynamoDBTokenStore

    return Reply(200, [_token_view(p) for p in DynamoDBTokenStore().list()])


def create_token(call: Call) -> Reply:
    from chalicelib.store.tokens import DynamoDBTokenStore

    docs = call.documents()
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ValidationFailed.at("body", "one map: {name: <token name>}")
    unknown = set(docs[0]) - {"name"}
    if unknown:
        raise ValidationFailed("Invalid input", [FieldError(k, "unknown field") for k in sorted(unknown)])
    token, principal = DynamoDBTokenStore().create(docs[0].get("name"))
    # The only time the token is ever shown: only its hash is stored.
    return Reply(201, {**_token_view(principal), "token": token})


def revoke_token(call: Call, name: str) -> Reply:
    from chalicelib.store.tokens import DynamoDBTokenStore

    DynamoDBTokenStore().revoke(decoded_name(name))
    return Reply(204, None)


# -- about -----------------------------------------------------------------------------------

def info(call: Call) -> Reply:
    s = settings()
    return Reply(200, {
        "message": "Hi, I'm Vamp! How are you?",
        "version": VERSION,
        "namespace": call.namespace,
        "running_since": STARTED,
        "persistence": {"type": "dynamodb", "table": s.table_name},
        "event_store": {"type": s.event_store},
        "auth": {"mode": s.auth_mode, "principal": call.principal},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


def config(call: Call) -> Reply:
    s = settings()
    # Only what is safe to show: no endpoints with credentials, no tokens.
    return Reply(200, {"vamp": {
        "namespace": call.namespace,
        "persistence": {"database": {"type": "dynamodb", "table": s.table_name}},
        "events": {"type": s.event_store, "retention_days": s.event_retention_days},
        "http_api": {"auth": s.auth_mode, "max_body_bytes": s.max_body_bytes, "per_page_max": s.per_page_max},
    }})


def openapi(call: Call) -> Reply:
    from chalicelib.api.openapi import document

    return Reply(200, document())


# -- gateway health and metrics (from the agents' metric events) ------------------------------

def _metric_events(call: Call, gateway: str, route: str | None, metric: str, window: int) -> list[dict]:
    from datetime import timedelta

    from chalicelib.gateways import telemetry
    from chalicelib.store.event_store import EventQuery
    from chalicelib.store.event_backend import event_store

    since = datetime.now(timezone.utc) - timedelta(seconds=window)
    query = EventQuery(tags=telemetry.tags_for(gateway, route, metric), type="metrics", gte=since,
                       per_page=settings().per_page_max)
    return event_store().query(call.namespace, query).items


def gateway_health(call: Call, gateway: str, route: str | None = None) -> Reply:
    from chalicelib.gateways import telemetry

    gateway, route = decoded_name(gateway), decoded_name(route) if route else None
    window = telemetry.window_seconds(call.query.get("window"))
    errors = telemetry.own_values(_metric_events(call, gateway, route, "errors", window), route)
    return Reply(200, {"value": telemetry.health(errors), "window": window})


def gateway_metric(call: Call, gateway: str, metric: str, route: str | None = None) -> Reply:
    from chalicelib.gateways import telemetry

    gateway, route = decoded_name(gateway), decoded_name(route) if route else None
    metric = telemetry.metric_name(metric)
    window = telemetry.window_seconds(call.query.get("window"))
    values = telemetry.own_values(_metric_events(call, gateway, route, metric, window), route)
    requests = values
    if metric == "rate":
        requests = telemetry.own_values(_metric_events(call, gateway, route, "requests", window), route)
    return Reply(200, {"value": telemetry.metric_value(metric, values, requests, window), "window": window})


# -- the rendered HAProxy configuration (Vamp's "vga": Vamp gateway agent) ------------------------

def gateway_configuration(call: Call, version: str) -> Reply:
    """What the agents of this namespace apply: text/plain when asked for, else
    `{"configuration": text, "generation": n}` (JSON or YAML); 404 when nothing is published."""
    from chalicelib.api.http import Text
    from chalicelib.errors import NotFound

    s = settings()
    if not s.etcd_endpoint:
        raise NotFound("gateway publishing is off (VAMP_ETCD_ENDPOINT is not set)", [FieldError("etcd", "not configured")])
    from chalicelib.gateways import publisher

    found = publisher.current(publisher.client(s.etcd_endpoint), call.namespace, decoded_name(version))
    if found is None:
        raise NotFound(f"no HAProxy {version} configuration published for namespace {call.namespace}",
                       [FieldError("version", "nothing published")])
    text, generation = found
    accept = (call.header("accept") or "").split(",")[0].split(";")[0].strip().lower()
    if accept in ("text/plain", "text/*"):
        return Reply(200, Text(text), {"X-Vamp-Generation": str(generation)})
    return Reply(200, {"configuration": text, "generation": generation})
