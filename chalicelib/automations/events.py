"""What the automations did or refused, as events in the namespace (tags `<source>:<outcome>`,
type `automation`), so `GET /events?tag=ecr` explains every push and every alarm; they go on
the bus too (store/eventbridge_events.DETAIL_TYPES)."""
from __future__ import annotations

import logging

from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import new_event

log = logging.getLogger(__name__)
TYPE = "automation"


def note(namespace: str, tags: list[str], value: dict) -> dict:
    event = new_event(tags, value, type=TYPE)
    try:
        event_store().publish(namespace, [event])
    except Exception:  # noqa: BLE001 - the decision is taken (or refused) either way
        log.exception("automation event %s not published in %s", tags, namespace)
    return event
