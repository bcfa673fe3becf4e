"""Event schedules: a workflow with `schedule: {event: [tags]}` runs when an event carrying all
those tags is published through the API (POST /api/v1/events) or arrives on the EventBridge bus
(source `vamp.user`, detail {namespace, tags, value}), and when another workflow's run events
match (`[workflows:a, finished]` runs after a). Runs happen in the process that received the
event, one after the other (decision 0039).

Never a loop: the events a run publishes (its run events, a built-in's figures) carry the chain of
workflows that led to them, and never trigger a workflow of that chain (itself included); an
event tagged with a workflow's own `workflows:<name>` never triggers it either; a chain is at most
CHAIN_LIMIT workflows long."""
from __future__ import annotations

import logging
import re
import threading
import time

from chalicelib.errors import ValidationFailed
from chalicelib.store.artifact_store import ArtifactStore

log = logging.getLogger(__name__)

BUS_SOURCE = "vamp.user"
BUS_DETAIL_TYPE = "vamp event"
CHAIN_LIMIT = 5
NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # as the API's (api/authorization.py)
MAX_TRIGGER_VALUE = 2048  # characters of the triggering event's value carried into the run
# Every POST /events (the agents' telemetry too, every window from every node) looks for listening
# workflows: their list is kept this long per namespace rather than queried per post. A workflow
# written in this process is seen at once (`forget`); one written through another Lambda
# instance is listened for within LISTENERS_TTL seconds.
LISTENERS_TTL = 10.0
_cache: dict[tuple[str, str], tuple[float, list[tuple[str, frozenset[str]]]]] = {}
_cache_lock = threading.Lock()
_clock = time.monotonic


def forget(namespace: str) -> None:
    """A workflow of the namespace was written here: read its listeners again next time."""
    with _cache_lock:
        for key in [k for k in _cache if k[1] == namespace]:
            del _cache[key]


def _listeners(store: ArtifactStore, namespace: str) -> list[tuple[str, frozenset[str]]]:
    from chalicelib.store import table

    key = (table.table_name(), namespace)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and _clock() < cached[0]:
        return cached[1]
    listeners = _read_listeners(store, namespace)
    with _cache_lock:
        _cache[key] = (_clock() + LISTENERS_TTL, listeners)
    return listeners


def _read_listeners(store: ArtifactStore, namespace: str) -> list[tuple[str, frozenset[str]]]:
    out = []
    for w in store.all_of_kind(namespace, "workflows"):
        schedule = w.document.get("schedule")
        event = schedule.get("event") if isinstance(schedule, dict) else None
        if isinstance(event, dict) and w.document.get("status") == "running":
            out.append((w.name, frozenset(event.get("tags") or ())))
    return out


def matching(listeners: list[tuple[str, frozenset[str]]], event: dict, origin: tuple[str, ...] = ()) -> list[str]:
    """The workflows whose tags the event carries, but never one whose own event this is, nor one
    of the chain of runs that published it."""
    tags = set(event.get("tags") or ())
    return [name for name, wanted in listeners
            if wanted and wanted <= tags and f"workflows:{name}" not in tags and name not in origin]


def _trigger(event: dict, origin: tuple[str, ...]) -> dict:
    import json

    value = event.get("value")
    if len(json.dumps(value, default=str)) > MAX_TRIGGER_VALUE:
        value = None  # too big to carry: the run can read the event by its id
    return {"id": event.get("id"), "tags": event.get("tags"), "type": event.get("type"), "value": value,
            "origin": list(origin)}


def on_published(store: ArtifactStore, namespace: str, events: list[dict], origin: tuple[str, ...] = (),
                 writers=None) -> list[dict]:
    """Run the workflows the events trigger (`origin`: the chain of workflows whose runs published
    them); returns the runs' outcomes. A failure to look or to run is logged, never the
    publisher's error (the events are stored)."""
    if len(origin) >= CHAIN_LIMIT or not events:
        return []
    from chalicelib.workflows import runs

    outcomes = []
    try:
        listeners = _listeners(store, namespace)
    except Exception:  # noqa: BLE001
        log.exception("workflow triggers not read for %s", namespace)
        return []
    for event in events:
        for name in matching(listeners, event, origin):
            try:
                outcomes.append(runs.run(store, namespace, name, _trigger(event, origin), writers))
            except Exception:  # noqa: BLE001
                log.exception("workflow %s/%s triggered by %s not run", namespace, name, event.get("id"))
    return outcomes


def on_bus_event(event: dict, publish, store: ArtifactStore, writers=None) -> dict:
    """A custom event from the bus: detail {namespace, tags, value} validated as the API's events
    are, stored, then the workflows it triggers run."""
    from chalicelib import dsl
    from chalicelib.store.event_store import new_event

    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise ValidationFailed.at("detail", "a bus event's detail is {namespace, tags, value}")
    namespace = detail.get("namespace")
    if not isinstance(namespace, str) or not NAMESPACE.fullmatch(namespace):
        raise ValidationFailed.at("detail.namespace", "a Vamp namespace: lowercase letters, digits and '-'")
    try:
        parsed = dsl.parse_event({k: v for k, v in detail.items() if k in ("tags", "value", "type")})
    except ValidationFailed as e:
        raise ValidationFailed("Invalid bus event", [type(x)(f"detail.{x.path}", x.reason) for x in e.errors]) from None
    if parsed.type == "metrics":  # telemetry is the agents' alone (decision 0022)
        raise ValidationFailed.at("detail.type", "metrics events come from gateway agents only")
    stored = new_event(tags=list(parsed.tags), value=parsed.value, type=parsed.type,
                       posted_by={"name": f"eventbridge:{event.get('source')}", "role": None})
    publish(namespace, [stored])
    return {"event": stored["id"], "runs": on_published(store, namespace, [stored], (), writers)}


# --- the control plane's own events trigger workflows too (0044): the SLA pass, the automations
def publishing(store: ArtifactStore, publish, writers=None):
    """A publish for the control plane's own writers (the SLA pass, the alarm and ECR
    automations): `emit(namespace, events, origin=())` stores the events with `publish`, then runs
    the workflows they trigger, as POST /events does, with the same loop guard (`origin`: the
    chain of workflow runs that led to these events, when an event they act on was a run's)."""
    def emit(namespace: str, events: list[dict], origin: tuple[str, ...] = ()) -> list[dict]:
        publish(namespace, events)
        return on_published(store, namespace, events, tuple(origin), writers)

    return emit


def chain_of(event: dict) -> tuple[str, ...]:
    """The chain of workflow runs behind an event a run's token posted (`posted_by.chain`, set by
    the API, never by the poster), else ()."""
    poster = event.get("posted_by") if isinstance(event, dict) else None
    chain = poster.get("chain") if isinstance(poster, dict) else None
    return tuple(c for c in chain if isinstance(c, str)) if isinstance(chain, list) else ()
