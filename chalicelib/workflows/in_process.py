"""The local stack's workflow timer: schedules held in this process, fired by local/ (a thread
started with the stack, local/workflow_schedules.py) through the `workflow_run` function, as
EventBridge Scheduler does on AWS. Sub-minute periods are honoured here (decision 0039)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from chalicelib.workflows import periods


@dataclass
class Entry:
    schedule: object  # schedules.TimeSchedule
    every: float
    next_at: float  # time.time() of the next run
    enabled: bool
    running: bool = False


class InProcessTimer:
    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Entry] = {}

    def check(self, schedule) -> None:
        periods.seconds(schedule.period)  # a period under the floor is a 400 here too

    def put(self, namespace: str, workflow: str, schedule, enabled: bool) -> None:
        start = periods.start_time(schedule.start)
        first = max(time.time(), start.timestamp()) if start else time.time()
        with self._lock:
            self._entries[(namespace, workflow)] = Entry(schedule, schedule.seconds, first, enabled)

    def delete(self, namespace: str, workflow: str) -> None:
        with self._lock:
            self._entries.pop((namespace, workflow), None)

    def entry(self, namespace: str, workflow: str) -> Entry | None:
        with self._lock:
            return self._entries.get((namespace, workflow))

    def take_due(self, now: float) -> list[tuple[str, str]]:
        """The enabled schedules due at `now`, each marked running (not handed out again until
        `done`) with its next time set: runs of one workflow never overlap."""
        due = []
        with self._lock:
            for key, e in self._entries.items():
                if e.enabled and not e.running and e.next_at <= now:
                    e.running = True
                    e.next_at = max(e.next_at + e.every, now)
                    due.append(key)
        return due

    def done(self, namespace: str, workflow: str) -> None:
        with self._lock:
            e = self._entries.get((namespace, workflow))
            if e is not None:
                e.running = False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


TIMER = InProcessTimer()
