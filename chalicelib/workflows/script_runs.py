"""Runs of script and container breeds (decision 0039, "Script and container runs"): a one-off
job on the namespace's driver (a local process, a Kubernetes Job, an ECS task) with Vamp's
workflow environment and a token bound to the workflow (role `workflow`, decision 0044: it reads
its namespace, changes gateways, scales services, publishes events; it writes no breed, workflow,
blueprint or token), valid until the run's timeout (plus a margin); revoked once an awaited run ends."""
from __future__ import annotations

import json
import logging
import re
import secrets
import time

from chalicelib.drivers import driver_for
from chalicelib.drivers.base import JobResult, JobSpec
from chalicelib.dsl.breed import Deployable
from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.store.artifact_store import ArtifactStore
from chalicelib.store.event_store import EventQuery
from chalicelib.store.tokens import WORKFLOW, DynamoDBTokenStore
from chalicelib.workflows import lifecycle, periods

TIMEOUT_VARIABLE = "VAMP_WORKFLOW_EXECUTION_TIMEOUT"
PERIOD_VARIABLE = "VAMP_WORKFLOW_EXECUTION_PERIOD"
DEFAULT_TIMEOUT = 60  # seconds, when the workflow does not set VAMP_WORKFLOW_EXECUTION_TIMEOUT
MAX_TIMEOUT = 3600  # a run is a job, not a daemon
TOKEN_MARGIN = 60  # seconds the token outlives the timeout: the run's own last calls, clocks apart
MAX_EVENT_CHARS = 4096  # the triggering event as JSON in VAMP_WORKFLOW_EVENT
log = logging.getLogger(__name__)
_TOKEN_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def timeout_of(document: dict, breed: dict | None = None) -> int:
    """VAMP_WORKFLOW_EXECUTION_TIMEOUT (whole seconds, 1..3600) of the workflow, else the breed's
    default, else 60 s."""
    raw = (document.get("environment_variables") or {}).get(TIMEOUT_VARIABLE)
    if raw in (None, ""):
        raw = ((breed or {}).get("environment_variables") or {}).get(TIMEOUT_VARIABLE)
    if raw in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        value = int(str(raw))
    except ValueError:
        raise ValidationFailed.at(f"environment_variables.{TIMEOUT_VARIABLE}", "whole seconds") from None
    if not 1 <= value <= MAX_TIMEOUT:
        raise ValidationFailed.at(f"environment_variables.{TIMEOUT_VARIABLE}", f"1 to {MAX_TIMEOUT} seconds")
    return value


def period_of(document: dict) -> int:
    """The time schedule's period in seconds; 0 for event schedules (as Vamp)."""
    schedule = document.get("schedule")
    time_schedule = schedule.get("time") if isinstance(schedule, dict) else None  # `daemon` is a string
    if isinstance(time_schedule, dict) and isinstance(time_schedule.get("period"), str):
        return int(periods.seconds(time_schedule["period"]))
    if isinstance(time_schedule, str):  # the bare period form
        return int(periods.seconds(time_schedule))
    return 0


def event_json(trigger: dict | None) -> str | None:
    """The triggering event for the run, at most 4096 characters: whole, else without its value."""
    if not trigger:
        return None
    event = {k: v for k, v in trigger.items() if k != "origin"}
    text = json.dumps(event, separators=(",", ":"), default=str)
    if len(text) <= MAX_EVENT_CHARS:
        return text
    cut = {k: event[k] for k in ("id", "tags", "type", "timestamp") if k in event}
    return json.dumps({**cut, "truncated": True}, separators=(",", ":"), default=str)[:MAX_EVENT_CHARS]


def breed_of(store: ArtifactStore, namespace: str, document: dict) -> dict:
    breed = document.get("breed") or {}
    reference = breed.get("reference") if isinstance(breed, dict) else None
    if reference is None:
        return breed
    stored = store.get(namespace, "breeds", reference)
    if stored is None:
        raise ValidationFailed.at("breed", f"breed {reference!r} is not stored (any more)")
    return stored.document


def token_name(namespace: str, name: str) -> str:
    readable = _TOKEN_NAME_UNSAFE.sub("_", f"{namespace}.{name}")[:48]
    return f"workflow@{readable}.{secrets.token_hex(3)}"


def spec_of(namespace: str, name: str, document: dict, breed: dict, token: str, trigger: dict | None,
            timeout: int) -> JobSpec:
    deployable = Deployable.model_validate(breed.get("deployable"))
    s = settings()
    env = {k: str(v) for k, v in (breed.get("environment_variables") or {}).items() if v is not None}
    env.update({k: str(v) for k, v in (document.get("environment_variables") or {}).items() if v is not None})
    env.update({  # the run's own: never the workflow's to override
        "VAMP_NAMESPACE": namespace,
        "VAMP_WORKFLOW_NAME": name,
        "VAMP_API_TOKEN": token,
        PERIOD_VARIABLE: str(period_of(document)),
        TIMEOUT_VARIABLE: str(timeout),
    })
    if s.api_url:
        env["VAMP_URL"] = s.api_url
    if s.etcd_endpoint:  # Vamp's names for the KV store's location
        env.update({"VAMP_KEY_VALUE_STORE_TYPE": "etcd", "VAMP_KEY_VALUE_STORE_CONNECTION": s.etcd_endpoint,
                    "VAMP_KEY_VALUE_STORE_PATH": f"/vamp/{namespace}"})
    event = event_json(trigger)
    if event is not None:
        env["VAMP_WORKFLOW_EVENT"] = event
    arguments = tuple((str(k), str(v)) for a in [*(breed.get("arguments") or []), *(document.get("arguments") or [])]
                      if isinstance(a, dict) for k, v in a.items())  # the breed's, then the workflow's (as sync)
    return JobSpec(name=name, deployable_type=deployable.type, definition=deployable.definition, env=env,
                   arguments=arguments, labels={"workflow": name})


def run(store: ArtifactStore, namespace: str, name: str, document: dict, trigger: dict | None) -> JobResult:
    """Mint the run's token, run the job on the namespace's driver, revoke the token when the run is
    over here (an asynchronous run's token expires on its own)."""
    breed = breed_of(store, namespace, document)
    timeout = timeout_of(document, breed)
    tokens = DynamoDBTokenStore()
    chain = tuple((trigger or {}).get("origin") or ())
    token, token_label = mint_run_token(namespace, name, int(time.time()) + timeout + TOKEN_MARGIN, chain=chain)
    result = JobResult("failed", reason="not run")
    try:
        spec = spec_of(namespace, name, document, breed, token, trigger, timeout)
        result = driver_for(namespace).run_job(namespace, spec, timeout)
        if result.state == "started":
            _settle_later(namespace, name, result.handle, timeout)
        return result
    finally:
        if result.state != "started":
            tokens.revoke(token_label)


SETTLE_AFTER = 60  # seconds past the deadline: ECS reports a stopped task within seconds


def _settle_later(namespace: str, name: str, handle: str | None, timeout: int) -> None:
    """On AWS, a one-shot EventBridge Scheduler schedule settles the run after its deadline
    (stopped if still running, reported): the Lambda that started it does not wait. Locally
    (the in-process timer) only the namespace's next script run settles it."""
    from datetime import datetime, timedelta, timezone

    s = settings()
    if not s.workflow_schedule_group or handle is None:
        return
    from chalicelib.workflows.eventbridge_scheduler import EventBridgeScheduler

    when = datetime.now(timezone.utc) + timedelta(seconds=timeout + SETTLE_AFTER)
    try:
        EventBridgeScheduler(s.workflow_schedule_group, s.workflow_run_function_arn,
                             s.workflow_scheduler_role_arn).settle_at(namespace, name, handle, when)
    except Exception:  # noqa: BLE001 - the namespace's next script run settles it instead
        log.exception("cannot schedule the settling of %s", handle)


def settle(namespace: str, events, publish) -> int:
    """The outcome of the namespace's asynchronous runs that ended (`finished`/`failed` events
    with the driver's handle, once each: a handle already reported is skipped), after stopping
    those past their deadline where the driver cannot (ECS). Called before each script run of the
    namespace. Returns how many were reported."""
    from chalicelib.workflows.runs import tail

    driver = driver_for(namespace)
    driver.stop_overdue_jobs(namespace)
    reported = 0
    for job in driver.finished_jobs(namespace):
        seen = [e for what in ("finished", "failed") for e in events.query(
            namespace, EventQuery(tags=lifecycle.tags(job.workflow, what), per_page=100)).items]
        if any(isinstance(e.get("value"), dict) and e["value"].get("handle") == job.handle for e in seen):
            driver.forget_job(namespace, job.handle)  # reported, but its removal failed then
            continue
        outcome = {"handle": job.handle, "duration": job.duration, "log": tail(list(job.log))}
        if job.exit_code is not None:
            outcome["exit_code"] = job.exit_code
        if job.succeeded:
            publish(namespace, [lifecycle.event(job.workflow, "finished", outcome)])
        else:
            error = job.reason or f"exited with code {job.exit_code}"
            publish(namespace, [lifecycle.event(job.workflow, "failed", {"error": error[:500], **outcome})])
        driver.forget_job(namespace, job.handle)  # reported: its remains go (a Kubernetes Job and pod)
        reported += 1
    return reported


# --- job arguments (0039): Vamp's `arguments` (docker run options) checked at the workflow's write

def argument_problems(namespace: str, document: dict, resolve) -> list[tuple[str, str]]:
    """What the namespace's driver cannot apply of a workflow's arguments and its breed's, as
    [(path, reason)] (a 400 before anything is stored; each run checks again). A built-in runs
    in the control plane: arguments there are refused, never ignored."""
    from chalicelib.drivers import job_arguments
    from chalicelib.workflows import builtins

    breed = document.get("breed") or {}
    reference = breed.get("reference") if isinstance(breed, dict) else None
    own = [(f"arguments[{i}].{k}", (str(k), str(v))) for i, a in enumerate(document.get("arguments") or [])
           if isinstance(a, dict) for k, v in a.items()]
    if reference in builtins.BUILTINS:
        return [(own[0][0], f"the built-in breed {reference!r} runs in the control plane: arguments (docker run "
                            "options) apply to script and container breeds only")] if own else []
    source = (resolve("breeds", reference) or {}) if reference is not None else breed
    inherited = [("breed" if reference is not None else f"breed.arguments[{i}].{k}", (str(k), str(v)))
                 for i, a in enumerate(source.get("arguments") or []) if isinstance(a, dict) for k, v in a.items()]
    return job_arguments.problems(namespace, inherited + own)


# --- workflow run tokens (0044) ---
def mint_run_token(namespace: str, workflow: str, expires_at: int | None,
                   chain: tuple[str, ...] = (), label: str | None = None) -> tuple[str, str]:
    """A new token for a run of `workflow` (decision 0044): role `workflow`, bound to that
    workflow and its namespace, expiring at `expires_at` (epoch seconds; None: a daemon's, revoked
    when the daemon stops). `chain`: the workflows whose runs led to this one; the token's events
    carry it with the workflow itself, so they never trigger a workflow of it again. Returns
    (token, label): the token for VAMP_API_TOKEN, the label to revoke it by (a daemon names its
    own, decision 0043). One place for runs and daemons, so both always get the same scope."""
    label = label or token_name(namespace, workflow)
    chain = tuple(c for c in chain if c != workflow) + (workflow,)
    token, _ = DynamoDBTokenStore().create(label, role=WORKFLOW, namespaces=[namespace], expires_at=expires_at,
                                           workflow=workflow, chain=chain)
    return token, label
