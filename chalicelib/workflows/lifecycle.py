"""A workflow's life as Vamp's: created -> scheduled (status starting -> running), updated only
while suspended, status changed through `PUT .../status`, deleted -> unscheduled. Every status
write is conditional on the version read (the artifact store's versions), so concurrent writers
never lose an update: a loser re-reads and applies its request again."""
from __future__ import annotations

import logging
from typing import Callable

from chalicelib.errors import Conflict, FieldError, NotFound, ValidationFailed
from chalicelib.store.artifact_store import ArtifactStore, StoredArtifact, Write
from chalicelib.workflows import builtins, daemons, triggers
from chalicelib.workflows.schedules import TimeSchedule, scheduler

log = logging.getLogger(__name__)

KIND = "workflows"
EVENT_TYPE = "workflows"
# What a PUT of the status may ask, in Vamp's words or as verbs (its UI: suspend / start / restart).
REQUESTS = {"running": "start", "start": "start", "suspended": "suspend", "suspend": "suspend",
            "restarting": "restart", "restart": "restart"}
# request -> (the status while it happens, the status after it)
TRANSITIONS = {"start": ("starting", "running"), "suspend": ("suspending", "suspended"),
               "restart": ("restarting", "running")}
ATTEMPTS = 5  # conditional-write retries before a 409

Publish = Callable[[str, list[dict]], None]


def tags(name: str, what: str) -> list[str]:
    return [f"{KIND}:{name}", what]


def event(name: str, what: str, value) -> dict:
    from chalicelib.store.event_store import new_event  # pydantic: writes only

    return new_event(tags=tags(name, what), value=value, type=EVENT_TYPE)


def is_daemon(document: dict) -> bool:
    return daemons.is_daemon(document)


def _without_status(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "status"}


def _with_status(document: dict, status: str) -> dict:
    return {**document, "status": status}


# -- artifact writes (chalicelib/artifacts.change calls these) --------------------------------

def check(document: dict, path: str, resolve) -> list[FieldError]:
    """What the DSL cannot know: the breed runs (a built-in's name or a stored breed) and the
    schedule can be scheduled here."""
    errors = []
    prefix = f"{path}." if path else ""
    breed = document.get("breed")
    reference = breed.get("reference") if isinstance(breed, dict) else None
    if reference is not None and reference not in builtins.BUILTINS and resolve("breeds", reference) is None:
        errors.append(FieldError(prefix + "breed", f"{reference!r} is neither a built-in breed "
                                                    f"({', '.join(sorted(builtins.BUILTINS))}) nor a stored breed"))
    if reference in ("canary", "autoscale"):  # what it changes, checked before it is stored
        from chalicelib.workflows.builtin_runs import autoscale_settings, canary_settings

        try:
            {"canary": canary_settings, "autoscale": autoscale_settings}[reference](
                document.get("environment_variables") or {})
        except ValidationFailed as e:
            errors += [FieldError(prefix + x.path, x.reason) for x in e.errors]
    errors += daemons.check(document, prefix)  # --- daemon workflows (0043)
    time = TimeSchedule.of(document)
    if time is not None:
        try:
            scheduler().check(time)
        except ValidationFailed as e:
            errors += [FieldError(prefix + x.path, x.reason) for x in e.errors]
    return errors


def prepare(store: ArtifactStore, namespace: str, writes: list[Write], mode: str) -> list[Write]:
    """The workflow writes of a batch as they will be stored: a new workflow `starting` (or
    `suspended` if it says so); an update only of a suspended one (409 naming `status`, as Vamp
    refuses), keeping its status, conditional on the version that was suspended."""
    out = []
    for w in writes:
        if w.kind != KIND or w.document is None:
            out.append(w)
            continue
        stored = store.get(namespace, KIND, w.name) if mode != "create" else None
        if stored is None:
            status = "suspended" if w.document.get("status") == "suspended" else "starting"
            out.append(Write(w.kind, w.name, _with_status(w.document, status), w.expected_version, w.meta))
            continue
        current = stored.document.get("status")
        unchanged = _without_status(stored.document) == _without_status(w.document)
        if current != "suspended" and not unchanged:
            raise Conflict(f"workflow {w.name} is {current}: a workflow is updated only while suspended",
                           [FieldError("status", f"{current}: suspend it first (PUT .../status suspended)")],
                           stored.version)
        expected = stored.version if w.expected_version in (0, None) else w.expected_version
        out.append(Write(w.kind, w.name, _with_status(w.document, current), expected, w.meta))
    return out


def after(store: ArtifactStore, namespace: str, results: list[tuple[Write, StoredArtifact | None]],
          publish: Publish) -> None:
    """Schedule what was created or changed, unschedule what was deleted, with their events.
    A schedule that could not be made leaves the workflow `starting` (logged); the scheduled
    pass tries again (`retry_starting`), or PUT its status `running`."""
    from chalicelib.store import namespaces

    for w, stored in results:
        if w.kind != KIND:
            continue
        triggers.forget(namespace)  # its event schedule, if any, listens from now on
        if stored is None:
            _unschedule(namespace, w.name, publish, deleted=True)  # its tokens tell if it ran a daemon
            continue
        namespaces.register(KIND, namespace)  # the local stack's timer reloads these at start
        status = stored.document.get("status")
        try:
            if status == "starting":
                _schedule(namespace, w.name, stored.document, True, publish, store)
                _advance(store, namespace, stored, "running")
            elif status == "suspended":
                _schedule(namespace, w.name, stored.document, False, None, store)
        except Exception:  # noqa: BLE001 - the write stands; the status says it is not scheduled
            log.exception("workflow %s/%s not scheduled", namespace, w.name)


def _schedule(namespace: str, name: str, document: dict, enabled: bool, publish: Publish | None,
              store: ArtifactStore) -> None:
    value: dict = {"schedule": document.get("schedule")}
    if is_daemon(document):  # decision 0043: its service on the driver, with a fresh token
        if enabled:
            try:
                value["handle"] = daemons.start(store, namespace, name, document)
            except (Conflict, ValidationFailed) as e:  # it stays starting: the event says why
                if publish is not None:
                    publish(namespace, [event(name, "failed", {"error": e.message[:500], "daemon": True})])
                raise
        else:  # written while suspended: a time schedule it had before it became a daemon goes
            scheduler().delete(namespace, name)
    else:
        time = TimeSchedule.of(document)
        if time is not None:
            scheduler().put(namespace, name, time, enabled)
    if enabled and publish is not None:
        publish(namespace, [event(name, "scheduled", value)])


def _unschedule(namespace: str, name: str, publish: Publish, disable: dict | None = None,
                deleted: bool = False) -> None:
    value: dict = {}
    if disable is not None and is_daemon(disable):  # its service removed, its token revoked (0043)
        value = daemons.stop(namespace, name)
    elif deleted:
        try:
            value = daemons.stop_if_running(namespace, name) or {}
        except Exception:  # noqa: BLE001 - the scheduled pass stops a daemon no running workflow asks for
            log.exception("daemon of deleted workflow %s/%s not stopped", namespace, name)
    if disable is not None and TimeSchedule.of(disable) is not None:
        scheduler().put(namespace, name, TimeSchedule.of(disable), False)  # suspended: kept, disabled
    else:
        scheduler().delete(namespace, name)
    publish(namespace, [event(name, "unscheduled", value)])


def _advance(store: ArtifactStore, namespace: str, stored: StoredArtifact, status: str) -> StoredArtifact | None:
    """Write `status` if the workflow is still at the version read; None if another writer got
    there first (theirs is the later word)."""
    try:
        written = store.apply(namespace, [Write(KIND, stored.name, _with_status(stored.document, status),
                                                stored.version)])[0]
    except Conflict:
        return None
    triggers.forget(namespace)  # running or not: whether its event schedule listens
    return written


# -- status -------------------------------------------------------------------------------

def get(store: ArtifactStore, namespace: str, name: str) -> StoredArtifact:
    found = store.get(namespace, KIND, name)
    if found is None:
        raise NotFound(f"workflows/{name} does not exist", [FieldError("name", "not found")])
    return found


def status(store: ArtifactStore, namespace: str, name: str) -> str:
    return get(store, namespace, name).document.get("status", "starting")


def request_of(body) -> str:
    """The body of a status PUT: the status as a string (JSON or YAML or plain), or {status}."""
    if isinstance(body, dict) and set(body) == {"status"}:
        body = body["status"]
    if not isinstance(body, str) or body.strip().lower() not in REQUESTS:
        raise ValidationFailed.at("status", "one of running, suspended, restarting (or start, suspend, restart)")
    return REQUESTS[body.strip().lower()]


def set_status(store: ArtifactStore, namespace: str, name: str, request: str, publish: Publish) -> str:
    """Apply a status request: the transient status written first (conditional on the version
    read), the schedule changed, then the final status (conditional on the transient one). A
    writer that loses the first write re-reads and applies its request again."""
    during, final = TRANSITIONS[request]
    for _ in range(ATTEMPTS):
        stored = get(store, namespace, name)
        current = stored.document.get("status")
        if current == final and request != "restart":
            return current  # nothing to do
        transient = _advance(store, namespace, stored, during)
        if transient is None:
            continue  # another writer moved it: read again
        if request == "suspend":
            _unschedule(namespace, name, publish, disable=transient.document)
        elif request == "start":
            _schedule(namespace, name, transient.document, True, publish, store)
        elif is_daemon(transient.document):  # replaced in place (a new token), never removed first:
            _schedule(namespace, name, transient.document, True, publish, store)  # ECS drains a deleted service
        else:
            _unschedule(namespace, name, publish)
            _schedule(namespace, name, transient.document, True, publish, store)
        done = _advance(store, namespace, transient, final)
        return final if done is not None else status(store, namespace, name)
    raise Conflict(f"workflow {name}'s status kept changing", [FieldError("status", "changed by others: try again")],
                   get(store, namespace, name).version)


# -- the scheduled pass: schedules that could not be made (0039) ----------------------------

STARTING_GRACE = 30  # seconds a workflow may be `starting` before the pass schedules it itself


def retry_starting(store: ArtifactStore, namespace: str, publish: Publish, now: float | None = None) -> list[str]:
    """Schedule the time and event workflows left `starting` (the Scheduler refused or was away
    when they were written) once they are older than STARTING_GRACE: a write in progress
    schedules its own. Conditional on the version read, as every status write. Returns the names
    now running."""
    import time as _time
    from datetime import datetime

    now = _time.time() if now is None else now
    done, page = [], 1
    while True:
        listed = store.list(namespace, KIND, page, 100)
        for stored in listed.items:
            if stored.document.get("status") != "starting" or is_daemon(stored.document):
                continue  # daemons: workflows/daemons.py's pass
            updated = datetime.fromisoformat(stored.updated.replace("Z", "+00:00")).timestamp()
            if now - updated < STARTING_GRACE:
                continue
            try:
                _schedule(namespace, stored.name, stored.document, True, publish, store)
            except Exception:  # noqa: BLE001 - still refused: the next pass tries again
                log.exception("workflow %s/%s still not scheduled", namespace, stored.name)
                continue
            if _advance(store, namespace, stored, "running") is not None:
                done.append(stored.name)
        if page * 100 >= listed.total or not listed.items:
            return done
        page += 1


def retry_all(publish: Publish | None = None) -> dict:
    """Every namespace that holds workflows (registered at their first write)."""
    from chalicelib.store import namespaces
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.store.event_backend import event_store

    store, events, out = DynamoDBArtifactStore(), event_store(), {}
    for namespace in namespaces.registered(KIND):
        try:
            scheduled = retry_starting(store, namespace, publish or events.publish)
        except Exception as e:  # noqa: BLE001 - one namespace never stops the others
            log.exception("workflow schedule pass of namespace %s failed", namespace)
            out[namespace] = {"error": str(e)}
            continue
        if scheduled:
            out[namespace] = {"scheduled": scheduled}
    return out
