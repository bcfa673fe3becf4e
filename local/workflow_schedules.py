"""Fires the workflows' time schedules in the local stack, as EventBridge Scheduler does on AWS
(moto stores schedules but never fires them): the in-process timer (chalicelib/workflows/
in_process.py) says what is due, and the app's `workflow_run` function runs it, each run on a
thread of its own (runs of one workflow never overlap). Sub-minute periods are honoured.

At start the timer is refilled from the store (the stack restarted: the workflows it ran are
scheduled again, suspended ones kept disabled)."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from chalicelib.workflows import in_process

log = logging.getLogger("vamp.local")

TICK = 0.1  # seconds between looks at the timer


def reload(timer=in_process.TIMER) -> int:
    """Schedule again what the store holds; returns how many."""
    from chalicelib.store import namespaces
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.workflows.schedules import TimeSchedule

    store, count = DynamoDBArtifactStore(), 0
    for namespace in namespaces.registered("workflows"):
        for w in store.all_of_kind(namespace, "workflows"):
            schedule = TimeSchedule.of(w.document)
            status = w.document.get("status")
            if schedule is not None and status in ("running", "suspended"):
                timer.put(namespace, w.name, schedule, status == "running")
                count += 1
    return count


class WorkflowTimer:
    def __init__(self, run, timer=in_process.TIMER):
        self._run, self._timer = run, timer  # run: the app's workflow_run(event, context)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs: Counter = Counter()  # (namespace, workflow) -> runs fired

    def start(self, reload_store: bool = True) -> None:
        if reload_store:
            log.info("workflow schedules reloaded: %d", reload(self._timer))
        self._thread = threading.Thread(target=self._loop, name="workflow-timer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            for namespace, workflow in self._timer.take_due(time.time()):
                self.runs[(namespace, workflow)] += 1
                threading.Thread(target=self._fire, args=(namespace, workflow), daemon=True,
                                 name=f"workflow-{namespace}-{workflow}"[:60]).start()

    def _fire(self, namespace: str, workflow: str) -> None:
        try:
            self._run({"namespace": namespace, "workflow": workflow}, None)
        except Exception:  # a failed run is logged (and reported by its events); the next comes anyway
            log.exception("workflow %s/%s run failed", namespace, workflow)
        finally:
            self._timer.done(namespace, workflow)

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
