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

log = logging.getLogger("vamp.local")


def end_interrupted_releases() -> list[str]:
    """End every release not finished; one line per release saying what was done."""
    # The release tasks load the domain's models (pydantic): only a serving stack needs them.
    from chalicelib.releases import tasks
    from chalicelib.releases.model import TERMINAL, Phase
    from chalicelib.store import namespaces

    d = tasks.deps_factory()
    done = []
    for namespace in namespaces.registered("gateways"):
        for state in d.store.list(namespace):
            if state.phase in TERMINAL:
                continue
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
            done.append(f"release {namespace}/{state.name}: {after.phase}: {reason}")
    return done
