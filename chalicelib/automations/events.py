"""What the automations did or refused, as events in the namespace (tags `<source>:<outcome>`,
type `automation`), so `GET /events?tag=ecr` explains every push and every alarm; they go on
the bus too (store/eventbridge_events.DETAIL_TYPES), and they trigger the workflows listening for
them, as POST /events does (workflows/triggers.py, decision 0044)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar

from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import new_event

log = logging.getLogger(__name__)
TYPE = "automation"
# What the built-in workflows a note triggers change (workflows/builtin_runs.Writers): handed in
# by app.py's handler for the length of one automation (`triggering`), never kept beyond it.
_writers: ContextVar = ContextVar("automation_writers", default=None)


@contextmanager
def triggering(writers):
    """Within: the workflows the notes trigger run with these writers."""
    token = _writers.set(writers)
    try:
        yield
    finally:
        _writers.reset(token)


def current_writers():
    """The writers `triggering` set (None outside it)."""
    return _writers.get()


def note(namespace: str, tags: list[str], value: dict) -> dict:
    event = new_event(tags, value, type=TYPE)
    try:
        publish(namespace, [event])
    except Exception:  # noqa: BLE001 - the decision is taken (or refused) either way
        log.exception("automation event %s not published in %s", tags, namespace)
    return event


def publish(namespace: str, events: list[dict]) -> None:
    """Stored, then the workflows listening for them run (a failed run never fails the automation)."""
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.workflows import triggers

    triggers.publishing(DynamoDBArtifactStore(), event_store().publish, _writers.get())(namespace, events)
