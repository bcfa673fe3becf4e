"""The control plane's scheduled pass (EventBridge, every minute): synchronise deployments with
their drivers, then republish any namespace whose gateways etcd holds at another generation than
the store: older (a write made while etcd was away) or newer (the store went back: restored or
rebuilt, docs/decisions/0019). Each part runs whatever the other did. Calls the domain, never the
HTTP layer."""
from __future__ import annotations

import logging

from chalicelib.deployments import route_targets, sync
from chalicelib.gateways import publisher
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

log = logging.getLogger(__name__)


def synchronise_deployments() -> dict:
    return {ns: p.summary() for ns, p in sync.run_all().items()}


def republish_gateways() -> dict:
    return publisher.republish_all(DynamoDBArtifactStore(), route_targets.source)


# -- SLAs and escalations (issue 14, docs/decisions/0040): after synchronisation, which writes
# the summaries the SLA pass reads.
def check_slas(writers=None) -> dict:
    from chalicelib.slas import check

    return check.run_all(writers=writers)


def every_minute(_event=None, writers=None) -> dict:
    """`writers`: what the built-in workflows the SLA pass's events trigger change, handed in by
    app.py (the API's write paths, workflows/builtin_runs.Writers; 0044)."""
    out: dict = {}
    for part, run in (("deployments", synchronise_deployments), ("gateways", republish_gateways),
                      ("slas", lambda: check_slas(writers)), ("daemons", reconcile_daemons),
                      ("workflows", schedule_starting_workflows)):
        try:
            out[part] = run()
        except Exception as e:  # noqa: BLE001 - the next pass tries again
            log.exception("scheduled %s pass failed", part)
            out[part] = {"error": str(e)}
    return out


# --- daemon workflows (0043): the driver runs exactly the running daemons (one it lost, after the
# local stack restarted say, started again), and the restarts it made are reported.
def reconcile_daemons() -> dict:
    from chalicelib.workflows import daemons

    return daemons.run_all()


# Workflows whose schedule could not be made when they were written (0039): scheduled now.
def schedule_starting_workflows() -> dict:
    from chalicelib.workflows import lifecycle

    return lifecycle.retry_all()
