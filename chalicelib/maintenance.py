"""The control plane's scheduled pass (EventBridge, every minute): synchronise deployments with
their drivers, then republish any namespace whose gateways etcd holds at an older generation
(a write made while etcd was away). Each part runs whatever the other did."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def every_minute(_event=None) -> dict:
    from chalicelib.api.deployments import synchronise
    from chalicelib.gateways.publisher import republish_all

    out: dict = {}
    for part, run in (("deployments", synchronise), ("gateways", republish_all)):
        try:
            out[part] = run()
        except Exception as e:  # noqa: BLE001 - the next pass tries again
            log.exception("scheduled %s pass failed", part)
            out[part] = {"error": str(e)}
    return out
