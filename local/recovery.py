"""Releases that ran when the local stack stopped: ended on restart, with the reason.

The embedded moto keeps Step Functions executions in memory only, so after a restart no
execution drives a release whose stored phase is still active: left alone it would stay
"progressing" forever with its gateway at a canary weight. Each one is ended through the same
path the release tasks use (chalicelib.releases.tasks): a release that was promoting is promoted
(its checks had all passed), any other is rolled back to weight 0 on the canary, and the reason
says why (docs/decisions/0020-local-stack-survives-faults.md: why ended, not resumed).
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("vamp.local")

RETRY_EVERY = 1.0  # seconds between two tries of a promotion or rollback the nodes have not applied yet


class Finisher:
    """Drives to the end the releases ended on restart: a promotion or rollback is done only once
    the gateway nodes applied it (docs/decisions/0018), and after a restart no execution waits
    for that, so this thread tries again every second until each one is finished, or the stack
    stops."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vamp-release-finisher", daemon=True)
        self._interrupted: set[str] | None = None  # ids found at start: later rounds touch no other

    def start(self) -> list[str]:
        lines = self._pass(first=True)
        self._thread.start()
        return lines

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(RETRY_EVERY):
            try:
                if not self._pass(first=False):
                    return  # nothing left waiting
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("interrupted releases: a round failed")

    def _pass(self, *, first: bool) -> list[str]:
        found: set[str] = set()
        lines = end_interrupted_releases(only=self._interrupted, found=found, announce=first)
        if first:
            self._interrupted = found
        return lines


def end_interrupted_releases(only: set[str] | None = None, found: set[str] | None = None,
                             announce: bool = True) -> list[str]:
    """End every release not finished (or only those with an id in `only`: a release started
    after the restart has an execution of its own); one line per release still being ended or
    just ended (the first round says what it does to each; later rounds only what still waits).
    The ids of the releases it ended or is ending are added to `found`."""
    # The release tasks load the domain's models (pydantic): only a serving stack needs them.
    from chalicelib.releases import tasks
    from chalicelib.releases.model import TERMINAL, Phase
    from chalicelib.store import namespaces

    d = tasks.deps_factory()
    done = []
    for namespace in namespaces.registered("gateways"):
        for state in d.store.list(namespace):
            if state.phase in TERMINAL or (only is not None and state.id not in only):
                continue
            if found is not None:
                found.add(state.id)
            at = f"step {state.step}, canary {state.canary} at {state.weight}%"
            try:
                if state.phase == Phase.PROMOTING:
                    reason = f"the local stack stopped while it promoted ({at}); promoted on restart"
                    after = tasks.finish_promote(d, namespace, state.name, state.id, reason)
                else:
                    reason = (f"the local stack stopped while it ran ({at}, {state.phase}); on restart the "
                              f"gateway {state.gateway} was restored to {state.stable} (canary at 0%)")
                    after = tasks.finish_rollback(d, namespace, state.name, state.id, reason)
            except Exception as e:  # noqa: BLE001 - one release never keeps the stack from starting
                log.exception("release %s/%s could not be ended", namespace, state.name)
                done.append(f"release {namespace}/{state.name} ({state.phase}) could not be ended: {e}")
                continue
            if announce or after.phase not in TERMINAL:
                waiting = f" ({after.waiting})" if after.phase not in TERMINAL and after.waiting else ""
                done.append(f"release {namespace}/{state.name}: {after.phase}{waiting}: {reason}")
    return done
