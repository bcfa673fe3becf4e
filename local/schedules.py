"""Fires the app's `@app.schedule` functions in the local stack, as EventBridge does on AWS
(moto stores schedules but never fires them).

Unlike EventBridge, the first run comes at once, and a run that changed something (or failed)
is followed by the next within a second, the wait doubling back to the period while runs find
nothing to do. After a restart the first pass redeploys the services the stopped stack ran and
the next routes them once healthy: seconds, not two periods (docs/decisions/0020-...).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter

log = logging.getLogger("vamp.local")

FOLLOW_UP = 1.0  # seconds before the run after one that changed something
_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def period_seconds(expression) -> float | None:
    """Seconds between runs of a `rate(...)` schedule; None for cron expressions (not fired)."""
    text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
    match = re.fullmatch(r"rate\((\d+) (\w+)\)", text.strip())
    if not match or match.group(2) not in _UNITS:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


class Scheduler:
    """One daemon thread per rate schedule. `VAMP_LOCAL_SCHEDULE_SECONDS` overrides every
    period (the demo and tests want minutes to pass faster)."""

    def __init__(self, chalice_app):
        self._app = chalice_app
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs: Counter = Counter()  # schedule name -> runs so far

    def start(self) -> None:
        override = os.environ.get("VAMP_LOCAL_SCHEDULE_SECONDS")
        for source in self._app.event_sources:
            if type(source).__name__ != "ScheduledEventConfig":
                continue
            period = float(override) if override else period_seconds(source.schedule_expression)
            if period is None:
                log.info("schedule %s is a cron expression: not fired locally", source.name)
                continue
            handler = _handler(source.handler_string)
            thread = threading.Thread(target=self._loop, args=(source.name, handler, period),
                                      name=f"schedule-{source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
            log.info("schedule %s every %.0f s", source.name, period)

    def _loop(self, name: str, handler, period: float) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            self.runs[name] += 1
            try:
                result = handler(_event(name), None)
            except Exception:  # a failed run is logged; the next one comes anyway, as on AWS
                log.exception("scheduled %s failed", name)
                result = {"error": "raised"}
            busy = changed(result)
            log.info("scheduled %s run %d: %s", name, self.runs[name], "changed something" if busy else "nothing to do")
            wait = min(period, FOLLOW_UP if busy else max(FOLLOW_UP, wait * 2))

    def stop(self, timeout: float = 3.0) -> None:
        """No run starts after this; one running gets `timeout` seconds to finish (its writes
        then reach the journal before it closes)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


def changed(result) -> bool:
    """Did a run change something (or fail)? Read from what jobs.every_minute returns: a
    deployments summary per namespace with `changed` and `errors`, a republish status per
    namespace ("current" when nothing was due). Anything else counts as a change."""
    if not isinstance(result, dict):
        return result is not None
    if "error" in result:
        return True
    for ns in (result.get("deployments") or {}).values():
        if not isinstance(ns, dict) or ns.get("changed") or ns.get("errors"):
            return True
    return any(status != "current" for status in (result.get("gateways") or {}).values())


def _handler(handler_string: str):
    module_name, _, attribute = handler_string.rpartition(".")
    import importlib

    return getattr(importlib.import_module(module_name), attribute)


def _event(name: str) -> dict:
    """What EventBridge sends a scheduled Lambda."""
    import uuid
    from datetime import datetime, timezone

    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": [f"arn:aws:events:local:000000000000:rule/{name}"], "detail": {},
    }
