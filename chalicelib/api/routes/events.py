"""Events: `GET|POST /api/v1/events[/get]` (queries, aggregates) and `POST /api/v1/events` (publish:
telemetry only from agent tokens, every event stamped with who posted it, decision 0022)."""
from __future__ import annotations

from chalicelib.api import authorization, pagination
from chalicelib.api.http import Call, Reply
from chalicelib.errors import FieldError, Forbidden, ValidationFailed
from chalicelib.settings import settings
from chalicelib.store.event_backend import event_store


def _event_query(call: Call, body: dict | None):
    # pydantic (the query models, the DSL) is imported by the operations that need it: not at
    # `import app` time, which every request's cold start pays.
    from chalicelib.dsl.event import MAX_TAGS
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
        tags = body.get("tags") or []
        if not isinstance(tags, list):  # `{"tags": 5}` reached list() as a TypeError: a 500
            raise ValidationFailed.at("tags", "a list of tags")
        spec["tags"] = spec["tags"] + tags
        if body.get("type"):
            spec["type"] = body["type"]
        timestamp = body.get("timestamp") or {}
        # only the bounds: `{"timestamp": {"per_page": 10**8}}` bypassed per_page_max (issue 10)
        if not isinstance(timestamp, dict) or set(timestamp) - {"gt", "gte", "lt", "lte"}:
            raise ValidationFailed.at("timestamp", "a map of gt, gte, lt, lte")
        spec.update(timestamp)
        if aggregator and body.get("aggregator"):  # the body's wins, but a bad query one is still refused
            _aggregator_of(aggregator)
        aggregator = body.get("aggregator") or aggregator
        if aggregator is not None and not isinstance(aggregator, dict):
            raise ValidationFailed.at("aggregator", "a map of type and field")
    if len(spec["tags"]) > MAX_TAGS:
        raise ValidationFailed.at("tags", f"at most {MAX_TAGS} tags")
    try:
        query = EventQuery(**spec)
        agg = Aggregator(**aggregator) if aggregator else None
    except (TypeError, ValueError) as e:
        raise _pydantic_error(e) from None
    return query, agg


def _aggregator_of(spec: dict):
    from chalicelib.store.event_store import Aggregator

    try:
        return Aggregator(**spec)
    except (TypeError, ValueError) as e:
        raise _pydantic_error(e) from None


def _pydantic_error(e: Exception) -> ValidationFailed:
    errors = getattr(e, "errors", None)
    if callable(errors):
        return ValidationFailed("Invalid query", [
            FieldError(".".join(str(p) for p in err["loc"]) or "query", err["msg"]) for err in errors()
        ])
    return ValidationFailed.at("query", str(e))


def query_events(call: Call, body: dict | None = None) -> Reply:

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
    from chalicelib import dsl  # pydantic, as above
    from chalicelib.store.event_store import new_event

    caller = call.caller
    if caller is None:  # the middleware always sets it: without it, nobody's role is known
        raise Forbidden.at("Authorization", "no caller")
    docs = call.documents()
    if len(docs) > settings().max_events_per_request:  # each is written once per tag
        raise ValidationFailed.at("body", f"at most {settings().max_events_per_request} events per request")
    many = len(docs) != 1
    events, errors = [], []
    for i, d in enumerate(docs):
        try:
            e = dsl.parse_event(d)
        except ValidationFailed as err:
            prefix = f"[{i}]." if many else ""
            errors += [FieldError(prefix + x.path, x.reason) for x in err.errors]
            continue
        events.append(new_event(tags=list(e.tags), value=e.value, type=e.type, timestamp=e.timestamp,
                                posted_by=_poster(caller)))
    if not docs:
        errors.append(FieldError("body", "no event given"))
    if errors:
        raise ValidationFailed("Invalid event", errors)
    refused = authorization.event_refusal(caller, [(e["tags"], e["type"]) for e in events])
    if refused is not None:  # nothing of the batch is written
        raise refused
    if not call.flag("validate_only"):
        event_store().publish(call.namespace, events)
        _trigger_workflows(call.namespace, events, caller.chain)
    return Reply(201, events if many else events[0])


def _poster(caller: authorization.Caller) -> dict:
    """Who posted: the token's name and role; a workflow run's token (0044) adds its workflow and
    the chain of runs behind it, which the events' triggers (and the SLA pass's) honour."""
    poster = {"name": caller.name, "role": caller.role}
    if caller.workflow is not None:
        poster.update(workflow=caller.workflow, chain=list(caller.chain))
    return poster


def _trigger_workflows(namespace: str, events: list[dict], origin: tuple[str, ...] = ()) -> None:
    # --- workflows (0039): the event schedules these events match run now; a workflow run's own
    # events carry its chain, so they never trigger a workflow of it again (0044)
    from chalicelib.api.backends import artifact_store
    from chalicelib.api.routes.workflows import writers
    from chalicelib.workflows import triggers

    triggers.on_published(artifact_store(), namespace, events, tuple(origin), writers())
