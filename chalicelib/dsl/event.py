"""Event: tags (at least one), any JSON value, an ISO-8601 timestamp and a type."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_serializer, field_validator, model_validator

from .base import ListOf, Model, at_most_items, fail_at

_TYPE_RE = re.compile(r"^[\w\d\-_]+$")
_TAG_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


def _tag(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value) or not value.strip():
        raise ValueError(f"invalid tag {value!r}: 1..256 characters, no control characters")
    return value


Tag = Annotated[str, AfterValidator(_tag)]

# The event store writes an event once per tag (and once more per `a` of an `a:b`): 401 tags
# in a 3 KB POST were 401 items (finding 9 of issue 10). Agents send 3 tags.
MAX_TAGS = 16
MAX_TAG_BYTES = 1024


def _tag_bytes(tags: list[str]) -> list[str]:
    size = sum(len(t.encode()) for t in tags)
    if size > MAX_TAG_BYTES:
        fail_at((), f"tags of at most {MAX_TAG_BYTES} bytes in all (got {size})")
    return tags


Tags = Annotated[ListOf(Tag), BeforeValidator(at_most_items(MAX_TAGS, "tags")), AfterValidator(_tag_bytes),
                 Field(min_length=1)]


def expand_tags(tags: list[str]) -> list[str]:
    """`a:b` is also stored as `a` (so `a` finds it); duplicates dropped, order kept."""
    out: dict[str, None] = {}
    for tag in tags:
        out[tag] = None
        if ":" in tag:
            out.setdefault(tag.split(":", 1)[0], None)
    return [t for t in out if t]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# The times an event can have: what OpenSearch's `date_nanos` holds (nanoseconds since the
# epoch in a signed 64-bit long), to the microsecond; the DynamoDB store's sort keys take the
# same range, so both backends accept the same events (docs/decisions/0028).
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=timezone.utc)


class Event(Model):
    tags: Tags
    value: Any = None
    timestamp: datetime = Field(default_factory=_now)
    type: str = Field("event", pattern=_TYPE_RE.pattern)

    @model_validator(mode="before")
    @classmethod
    def _kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" in data:
            data = dict(data)
            if data.pop("kind") not in ("event", "events"):
                fail_at(("kind",), "kind must be events")
        return data

    @field_validator("tags")
    @classmethod
    def _expand(cls, tags: list[str]) -> list[str]:
        return expand_tags(tags)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Timestamps without a zone are UTC, so every stored timestamp compares."""
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value

    @field_validator("timestamp")
    @classmethod
    def _storable(cls, value: datetime) -> datetime:
        if not EARLIEST <= value <= LATEST:
            raise ValueError(f"between {EARLIEST.isoformat()} and {LATEST.isoformat()}: the times the event store holds")
        return value

    @field_serializer("timestamp")
    def _iso(self, value: datetime) -> str:
        return value.isoformat()
