"""One run of a workflow (the `workflow_run` function: EventBridge Scheduler, the local timer and
the event triggers invoke it with {namespace, workflow[, trigger]}). Runs are recorded as events
only (decision 0039): `workflows:<name>` + `started`, then `finished` (exit code 0) or `failed`
(the error), each with the duration and a bounded log tail. A `time` schedule with `repeat: N`
is unscheduled by its N-th run."""
from __future__ import annotations

import logging
import time

from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.store import workflow_runs
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.store.node_store import DynamoDBNodeStore
from chalicelib.workflows import builtin_runs, lifecycle
from chalicelib.workflows.schedules import TimeSchedule, scheduler

log = logging.getLogger(__name__)

TAIL_LINES = 20
TAIL_LINE_CHARS = 200


def tail(lines: list[str]) -> list[str]:
    """The last lines of a run's log, each cut: what an event carries, whatever the run printed."""
    return [line[:TAIL_LINE_CHARS] for line in lines[-TAIL_LINES:]]


def handle(event: dict, writers: "builtin_runs.Writers | None" = None) -> dict:
    if not isinstance(event, dict) or not isinstance(event.get("namespace"), str) \
            or not isinstance(event.get("workflow"), str):
        raise ValidationFailed.at("event", "a workflow run needs {namespace, workflow}")
    if event.get("settle"):  # a one-shot schedule at an asynchronous run's deadline (0039)
        from chalicelib.workflows import script_runs

        events = event_store()
        return {"settled": script_runs.settle(event["namespace"], events, events.publish)}
    return run(DynamoDBArtifactStore(), event["namespace"], event["workflow"], event.get("trigger"), writers)


def handle_bus_event(event: dict, writers: "builtin_runs.Writers | None" = None) -> dict:
    """A custom event on the EventBridge bus (source `vamp.user`): stored, and the workflows it
    triggers run (triggers.py)."""
    from chalicelib.workflows import triggers

    return triggers.on_bus_event(event, event_store().publish, DynamoDBArtifactStore(), writers)


def run(store: ArtifactStore, namespace: str, name: str, trigger: dict | None = None,
        writers: "builtin_runs.Writers | None" = None) -> dict:
    stored = store.get(namespace, lifecycle.KIND, name)
    if stored is None:
        return {"skipped": "no such workflow"}
    status = stored.document.get("status")
    if status != "running":  # a firing in flight when it was suspended, or one still starting
        return {"skipped": status}
    events = event_store()
    origin = tuple((trigger or {}).get("origin") or ()) + (name,)

    def publish(ns: str, made: list[dict]) -> None:  # stored, then the workflows they trigger run
        from chalicelib.workflows import triggers

        events.publish(ns, made)
        triggers.on_published(store, ns, made, origin, writers)

    run_number = _claim_run(namespace, name, stored.document, events)
    if run_number is False:
        return {"skipped": "repeat: every run of this scheduling has run"}
    breed = stored.document.get("breed") or {}
    builtin = breed.get("reference") if isinstance(breed, dict) else None
    started = time.monotonic()
    publish(namespace, [lifecycle.event(name, "started", {"trigger": trigger, "breed": builtin or breed.get("name")})])
    lines: list[str] = []
    try:
        if builtin not in builtin_runs.RUNS:  # a script or container breed: on the namespace's driver
            return _script_run(store, namespace, name, stored.document, trigger, started, publish, events,
                               run_number)
        made, lines = builtin_runs.RUNS[builtin](builtin_runs.Run(
            store, events, DynamoDBNodeStore(settings().node_ttl), namespace,
            stored.document.get("environment_variables") or {}, writers or builtin_runs.Writers()))
        if made:
            publish(namespace, made)
        lines.append(f"published {len(made)} events")
        outcome = {"exit_code": 0, "duration": round(time.monotonic() - started, 3), "log": tail(lines)}
        publish(namespace, [lifecycle.event(name, "finished", outcome)])
    except Exception as e:  # noqa: BLE001 - a failed run is reported, never retried by the Scheduler
        log.exception("workflow %s/%s failed", namespace, name)
        outcome = {"error": f"{type(e).__name__}: {e}"[:500], "duration": round(time.monotonic() - started, 3),
                   "log": tail(lines)}
        publish(namespace, [lifecycle.event(name, "failed", outcome)])
    _repeat_done(namespace, name, stored.document, events, run_number)
    return outcome


def _script_run(store, namespace: str, name: str, document: dict, trigger: dict | None, started: float,
                publish, events, run_number: int | None) -> dict:
    from chalicelib.workflows import script_runs

    try:
        script_runs.settle(namespace, events, publish)  # earlier asynchronous runs' outcomes
    except Exception:  # noqa: BLE001 - never in the way of this run
        log.exception("settling earlier runs in %s failed", namespace)
    try:
        result = script_runs.run(store, namespace, name, document, trigger)
    except Exception as e:  # noqa: BLE001 - reported as the run's failure
        log.exception("workflow %s/%s could not start", namespace, name)
        result = script_runs.JobResult("failed", reason=f"{type(e).__name__}: {e}"[:500])
    outcome: dict = {"duration": round(time.monotonic() - started, 3), "log": tail(list(result.log))}
    if result.exit_code is not None:
        outcome["exit_code"] = result.exit_code
    if result.state == "succeeded":
        publish(namespace, [lifecycle.event(name, "finished", outcome)])
    elif result.state == "started":  # the driver settles it (0039: asynchronous runs)
        outcome = {**outcome, "running": result.handle}  # its outcome: script_runs.settle, later
    else:
        outcome = {"error": (result.reason or "failed")[:500], **outcome}
        publish(namespace, [lifecycle.event(name, "failed", outcome)])
    _repeat_done(namespace, name, document, events, run_number)
    return outcome


def _claim_run(namespace: str, name: str, document: dict, events) -> int | None | bool:
    """A `repeat: N` schedule's run claims its slot before it starts (store/workflow_runs.py):
    its number, False when all N ran (this firing was in flight), None without `repeat`."""
    schedule = TimeSchedule.of(document)
    if schedule is None or schedule.repeat is None:
        return None
    last = events.query(namespace, EventQuery(tags=lifecycle.tags(name, "scheduled"), per_page=1)).items
    scheduling = last[0]["id"] if last else "-"
    number = workflow_runs.claim(namespace, name, scheduling, schedule.repeat)
    if number is None:
        _unschedule_repeated(namespace, name, schedule.repeat, events)
        return False
    return number


def _repeat_done(namespace: str, name: str, document: dict, events, run_number: int | None) -> None:
    """Unschedule a `repeat: N` schedule after its N-th run since it was last scheduled."""
    schedule = TimeSchedule.of(document)
    if schedule is not None and run_number is not None and run_number >= (schedule.repeat or 0):
        _unschedule_repeated(namespace, name, schedule.repeat, events)


def _unschedule_repeated(namespace: str, name: str, repeat: int, events) -> None:
    scheduler().delete(namespace, name)
    events.publish(namespace, [lifecycle.event(name, "unscheduled", {"reason": f"{repeat} runs of {repeat}"})])
