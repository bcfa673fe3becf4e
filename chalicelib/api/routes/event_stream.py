"""`GET /api/v1/events/stream`: the events stored after a cursor, with GET /events' filters (`tag`,
`type`), as a long poll (docs/decisions/0042).

API Gateway and chalice buffer a Lambda's answer, so this handler never streams: it answers as
soon as events newer than the cursor (`after=<event id>`, or the `Last-Event-ID` header) exist,
or when `wait` seconds (at most MAX_WAIT, inside API Gateway's 29 s) have passed without one;
`{"events": [...oldest first, at most `limit`], "cursor": <id to pass as after>, "more": bool}`.
Without a cursor the stream starts now. The local stack serves the same endpoint as a real
`text/event-stream` (local/event_stream.py), by polling this handler with the cursor.

Order is the events' ids (ULIDs: their timestamp's millisecond first), so a cursor is a point in
event time: an event published later with an older `timestamp` than the cursor is not streamed.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from chalicelib.api.http import Call, Reply
from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings
from chalicelib.store.event_backend import event_store

MAX_WAIT = 20  # seconds: API Gateway ends an integration at 29 s
POLL = 1.0  # seconds between reads of the event store while waiting
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000  # events per answer
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}\Z")


def cursor_ms(cursor: str) -> int:
    """The milliseconds a ULID begins with (its first 10 characters: 48 bits)."""
    n = 0
    for ch in cursor[:10]:
        n = n * 32 + _CROCKFORD.index(ch)
    return n


def cursor_at(ms: int) -> str:
    """The smallest id of millisecond `ms`: a cursor before every event of that millisecond on."""
    n = ms << 80
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def _int(call: Call, name: str, default: int, low: int, high: int) -> int:
    raw = call.query.get(name)
    if raw in (None, ""):
        return default
    if re.fullmatch(r"[0-9]{1,6}", raw) and low <= int(raw) <= high:
        return int(raw)
    raise ValidationFailed.at(name, f"an integer from {low} to {high}")


def _cursor(call: Call) -> str | None:
    raw = call.query.get("after") or call.header("last-event-id") or None
    if raw is None:
        return None
    raw = raw.strip().upper()
    if not _ULID.match(raw) or raw[0] > "7":  # 48 bits of milliseconds: at most 7 in the first place
        raise ValidationFailed.at("after", "an event id (26 characters, Crockford base32), as the last answer's cursor")
    return raw


def after(store, namespace: str, q_tags: list[str], q_type: str | None, cursor: str, limit: int,
          now: datetime) -> tuple[list[dict], str, bool]:
    """(events after `cursor` up to `now`, oldest first, at most `limit`; the new cursor; more?)."""
    from chalicelib.store.event_store import EventQuery  # pydantic: off the cold-start path

    per_page = settings().per_page_max
    since = datetime.fromtimestamp(cursor_ms(cursor) / 1000, timezone.utc) - timedelta(milliseconds=1)
    base = {"tags": q_tags, "type": q_type, "gte": since, "lte": now, "per_page": per_page}
    first = store.query(namespace, EventQuery(**base, page=1))
    items, complete = list(first.items), first.total <= per_page
    if not complete:  # newest first: the oldest are on the last pages
        last = -(-first.total // per_page)
        items = []
        for page in range(max(1, last - (-(-limit // per_page))), last + 1):
            items += store.query(namespace, EventQuery(**base, page=page)).items
    found = sorted((e for e in items if e["id"] > cursor), key=lambda e: e["id"])
    if not complete and found:
        # what was read may end inside a millisecond whose other events are on an unread page
        edge = cursor_ms(found[-1]["id"])
        kept = [e for e in found if cursor_ms(e["id"]) < edge]
        found = kept or found
    more = len(found) > limit or not complete
    found = found[:limit]
    return found, (found[-1]["id"] if found else cursor), more


def stream(call: Call) -> Reply:
    from chalicelib.dsl.event import MAX_TAGS

    tags = call.multi_query.get("tag", [])
    if len(tags) > MAX_TAGS:
        raise ValidationFailed.at("tag", f"at most {MAX_TAGS} tags")
    q_type = call.query.get("type") or None
    if q_type is not None and not re.fullmatch(r"[\w\-]{1,128}", q_type):
        raise ValidationFailed.at("type", "letters, digits, '-' and '_'")
    wait = _int(call, "wait", MAX_WAIT, 0, MAX_WAIT)
    limit = _int(call, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = _cursor(call) or cursor_at(int(time.time() * 1000))
    store, deadline = event_store(), time.monotonic() + wait
    while True:
        events, cursor, more = after(store, call.namespace, tags, q_type, cursor, limit, datetime.now(timezone.utc))
        left = deadline - time.monotonic()
        if events or left <= 0:
            return Reply(200, {"events": events, "cursor": cursor, "more": more})
        time.sleep(min(POLL, left))
