"""ISO-8601 periods as seconds, and as what EventBridge Scheduler can express. Pure."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from chalicelib.errors import ValidationFailed

# The DSL (dsl/workflow.py) has checked the shape already; this reads the figures. Years and
# months have no fixed length: counted as 365 and 30 days (decision 0039).
_PARTS = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_UNIT_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)
MIN_LOCAL_SECONDS = 1.0  # the local timer's floor: a period under a second is refused everywhere
MIN_SCHEDULER_SECONDS = 60  # EventBridge Scheduler's rate() is whole minutes at least
FIELD = "schedule.time.period"


def seconds(period: str) -> float:
    match = _PARTS.fullmatch(period)
    if match is None:
        raise ValidationFailed.at(FIELD, f"invalid period {period!r}: an ISO-8601 duration like PT1M")
    total = sum(float(v) * unit for v, unit in zip(match.groups(), _UNIT_SECONDS) if v)
    if total < MIN_LOCAL_SECONDS:
        raise ValidationFailed.at(FIELD, f"{period} is under {MIN_LOCAL_SECONDS:.0f} s: it cannot be scheduled")
    return total


def rate_expression(period: str) -> str:
    """`rate(N minutes|hours|days)` for EventBridge Scheduler, or a 400 naming the period when it
    cannot say it (under a minute, or not whole minutes)."""
    total = seconds(period)
    if total < MIN_SCHEDULER_SECONDS or total % 60:
        raise ValidationFailed.at(FIELD, f"{period} is not whole minutes (at least PT1M): EventBridge Scheduler "
                                         "cannot run it on AWS (sub-minute periods run on the local stack only)")
    minutes = int(total // 60)
    for unit, size in (("days", 1440), ("hours", 60)):
        if minutes % size == 0:
            n = minutes // size
            return f"rate({n} {unit[:-1] if n == 1 else unit})"
    return f"rate({minutes} {'minute' if minutes == 1 else 'minutes'})"


def start_time(start: str | None) -> datetime | None:
    """The first run's time (UTC) for `start` (None or `now`: at once)."""
    if start in (None, "now"):
        return None
    value = datetime.fromisoformat(start)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
