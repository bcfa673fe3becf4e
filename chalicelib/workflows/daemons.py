"""Daemon workflows (`schedule: daemon`, docs/decisions/0043): a script or container breed run as
a long-running service of one instance on the namespace's driver (a supervised process group
locally, an ECS service, a Kubernetes Deployment), restarted by the driver when it dies.

- Started when the workflow is scheduled (created `starting`, PUT start or restart), stopped and
  removed when it is unscheduled (suspend, delete): lifecycle.py calls `start` and `stop`.
- Its environment is a script run's (script_runs.spec_of) with a token of the same scope
  (script_runs.mint_run_token) that does not expire, named `daemon@<ns>.<workflow>.<digest>.<random>`
  (found by its prefix to revoke whatever the driver still knows); a new one at each start (the
  earlier ones revoked once the driver runs the new), all revoked at stop.
- The scheduled pass (`run_all`, chalicelib/jobs.py) starts again a `running` daemon the driver
  lost (the local stack restarted, a service deleted by hand), stops one the store no longer
  runs, and reports the restarts the driver made (`restarted` events, with exit code and log
  tail where the driver keeps them).
- A built-in breed cannot be a daemon (it runs in a Lambda): a 400 naming `schedule`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import secrets
from typing import Callable

from chalicelib.drivers import driver_for
from chalicelib.drivers.base import DriverError
from chalicelib.errors import Conflict, FieldError, NotFound
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.workflows import builtins

log = logging.getLogger(__name__)

KIND = "workflows"
TOKEN_PREFIX = "daemon@"
TOKEN_RANDOM_BYTES = 3  # the part of a daemon's token name that differs per start
NO_TIMEOUT = 0  # VAMP_WORKFLOW_EXECUTION_TIMEOUT of a daemon: it runs until it is stopped
RUNNING = ("running",)  # the statuses in which its daemon runs (transient ones belong to set_status)
LEFT_ALONE = ("starting", "restarting", "suspending")  # a status change under way: its writer acts
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

Publish = Callable[[str, list[dict]], None]


def is_daemon(document: dict) -> bool:
    return isinstance(document, dict) and document.get("schedule") == "daemon"


def check(document: dict, prefix: str) -> list[FieldError]:
    """A daemon's breed runs on a driver: a built-in (health, metrics, ...) runs in the control
    plane's Lambda, on a time or event schedule only."""
    breed = document.get("breed")
    reference = breed.get("reference") if isinstance(breed, dict) else None
    if is_daemon(document) and reference in builtins.BUILTINS:
        return [FieldError(prefix + "schedule", f"{reference!r} is a built-in: a built-in runs on a time or "
                                                "event schedule, a daemon is a script or container breed")]
    return []


def token_prefix(namespace: str, name: str) -> str:
    """The names of a daemon's tokens start so (a digest of the exact pair: `a/b` and `a.b`
    differ), then a random part per start: found to revoke whatever the driver remembers."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
    readable = _UNSAFE.sub("_", f"{namespace}.{name}")[:40]
    return f"{TOKEN_PREFIX}{readable}.{digest}."


def _tokens() -> list[str]:
    from chalicelib.store.tokens import DynamoDBTokenStore

    return [t.name for t in DynamoDBTokenStore().list() if t.name.startswith(TOKEN_PREFIX)]


def _revoke(namespace: str, name: str, keep: str | None = None) -> int:
    """Revoke the daemon's tokens (but `keep`); how many."""
    from chalicelib.store.tokens import DynamoDBTokenStore

    prefix, store, revoked = token_prefix(namespace, name), DynamoDBTokenStore(), 0
    for label in _tokens():
        # exactly the prefix and the random part: workflow `a.<digest>.x` is not `a`'s
        if label.startswith(prefix) and len(label) == len(prefix) + 2 * TOKEN_RANDOM_BYTES and label != keep:
            try:
                store.revoke(label)
                revoked += 1
            except NotFound:  # revoked meanwhile
                pass
    return revoked


def start(store: ArtifactStore, namespace: str, name: str, document: dict) -> str:
    """Run the workflow's daemon (replacing any) with a fresh token, then revoke its earlier ones;
    the driver's handle. Conflict naming `schedule` when the driver refuses (the reason),
    ValidationFailed when its breed is gone; the new token is revoked again then."""
    from chalicelib.store import namespaces
    from chalicelib.workflows import script_runs

    breed = script_runs.breed_of(store, namespace, document)
    namespaces.register("daemons", namespace)  # the pass visits it from now on
    label = token_prefix(namespace, name) + secrets.token_hex(TOKEN_RANDOM_BYTES)
    token, label = script_runs.mint_run_token(namespace, name, None, label=label)
    try:
        spec = script_runs.spec_of(namespace, name, document, breed, token, None, NO_TIMEOUT)
        spec = dataclasses.replace(spec, labels={**spec.labels, "daemon": "true", "token": label})
        handle = driver_for(namespace).run_daemon(namespace, spec)
    except DriverError as e:
        _revoke_one(label)
        raise Conflict(f"workflow {name}'s daemon did not start: {e}",
                       [FieldError("schedule", f"the {driver_for(namespace).name} driver: {e}")]) from e
    except Exception:
        _revoke_one(label)
        raise
    _revoke(namespace, name, keep=label)  # the replaced daemon's
    return handle


def _revoke_one(label: str) -> None:
    from chalicelib.store.tokens import DynamoDBTokenStore

    try:
        DynamoDBTokenStore().revoke(label)
    except NotFound:
        pass


def stop(namespace: str, name: str) -> dict:
    """Revoke the daemon's tokens, then stop and remove it; what it last said (for the event).
    A driver that cannot stop it now does not hold the suspension up: its token no longer
    authenticates, and the scheduled pass stops a daemon no running workflow asks for."""
    out: dict = {"token_revoked": _revoke(namespace, name) > 0}
    driver = driver_for(namespace)
    last = (driver.daemons(namespace) or {}).get(name)
    if last is not None:
        out.update(_said(last))
    try:
        driver.stop_daemon(namespace, name)
    except DriverError as e:
        log.warning("daemon %s/%s not stopped now: %s", namespace, name, e)
        out["not_stopped"] = f"{e}: the scheduled pass stops it"[:500]
    return out


def stop_if_running(namespace: str, name: str) -> dict | None:
    """A deleted workflow's daemon, if it had one running (its token says so: one Query, no
    driver call for every other workflow deleted). Anything missed, the pass stops."""
    if not _revoke(namespace, name):
        return None
    return {**stop(namespace, name), "token_revoked": True}


def _said(status) -> dict:
    out: dict = {"restarts": status.restarts} if status.restarts is not None else {}
    if status.exit_code is not None:
        out["exit_code"] = status.exit_code
    if status.log:
        out["log"] = [line[:200] for line in status.log[-20:]]
    return out


# -- the scheduled pass -----------------------------------------------------------------------

def reconcile(store: ArtifactStore, namespace: str, events, publish: Publish) -> dict:
    """Make the driver run exactly the namespace's `running` daemons; report restarts."""
    from chalicelib.workflows import lifecycle

    driver = driver_for(namespace)
    running = driver.daemons(namespace)
    if running is None:
        return {"error": "the driver cannot list its daemons"}
    workflows = {w.name: w for w in store.all_of_kind(namespace, KIND) if is_daemon(w.document)}
    tokens = set(_tokens()) if running else set()
    out: dict = {}
    for name, w in workflows.items():
        status = running.get(name)
        # A daemon whose token is no more (revoked by hand, or by a start that raced another and
        # lost the driver's last word) is started again with a fresh one.
        revoked = status is not None and status.token_name is not None and status.token_name not in tokens
        if w.document.get("status") in RUNNING and (status is None or revoked):
            try:
                handle = start(store, namespace, name, w.document)
            except Exception as e:  # noqa: BLE001 - reported; the next pass tries again
                log.exception("daemon %s/%s not started again", namespace, name)
                publish(namespace, [lifecycle.event(name, "failed", {"error": str(e)[:500], "daemon": True})])
                out[name] = "failed"
                continue
            again = store.get(namespace, KIND, name)  # suspended meanwhile: its writer stopped nothing of ours
            if again is None or again.document.get("status") not in RUNNING:
                stop(namespace, name)
                out[name] = "stopped"
                continue
            why = "its token was revoked" if revoked else f"the {driver.name} driver was not running it"
            publish(namespace, [lifecycle.event(name, "restarted", {
                "by": "control plane", "handle": handle, "reason": f"{why}: started again with a new token"})])
            out[name] = "started"
            running.pop(name, None)
    for name, status in running.items():
        w = workflows.get(name)
        wanted = w is not None and w.document.get("status") in RUNNING + LEFT_ALONE
        if not wanted:
            said = stop(namespace, name)
            publish(namespace, [lifecycle.event(name, "unscheduled", {
                "reason": "a daemon no running workflow asks for: stopped", **said})])
            out[name] = "not stopped" if "not_stopped" in said else "stopped"
        elif status.restarts:
            if _report_restarts(namespace, name, status, events, publish):
                out[name] = "restarted"
    return out


def _report_restarts(namespace: str, name: str, status, events, publish: Publish) -> bool:
    """A `restarted` event when the driver restarted the daemon since the last one reported for
    this handle (the last `restarted` event says how many it had seen)."""
    from chalicelib.store.event_store import EventQuery
    from chalicelib.workflows import lifecycle

    seen = events.query(namespace, EventQuery(tags=lifecycle.tags(name, "restarted"), per_page=20)).items
    reported = max((e["value"].get("restarts", 0) for e in seen if isinstance(e.get("value"), dict)
                    and e["value"].get("handle") == status.handle and e["value"].get("by") == "driver"), default=0)
    if status.restarts <= reported:
        return False
    publish(namespace, [lifecycle.event(name, "restarted", {"by": "driver", "handle": status.handle,
                                                            **_said(status)})])
    return True


def run_all(publish: Publish | None = None) -> dict:
    """Every namespace that ever ran a daemon (registered at its first start)."""
    from chalicelib.store import namespaces
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.store.event_backend import event_store

    store, events, out = DynamoDBArtifactStore(), event_store(), {}
    for namespace in namespaces.registered("daemons"):
        try:
            result = reconcile(store, namespace, events, publish or events.publish)
        except Exception as e:  # noqa: BLE001 - one namespace never stops the others
            log.exception("daemon pass of namespace %s failed", namespace)
            result = {"error": str(e)}
        if result:
            out[namespace] = result
    return out
