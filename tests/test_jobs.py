"""The scheduled pass runs both parts whatever the other did."""
from __future__ import annotations

from chalicelib import jobs
from chalicelib.deployments import sync
from chalicelib.gateways import publisher


def test_a_failing_part_does_not_stop_the_other(monkeypatch):
    def broken():
        raise RuntimeError("driver away")

    monkeypatch.setattr(sync, "run_all", broken)
    monkeypatch.setattr(publisher, "republish_all", lambda store, targets: {"default": "current"})
    monkeypatch.setattr(jobs, "check_slas", lambda writers=None: {})  # the SLA pass (issue 14): its own tests
    monkeypatch.setattr(jobs, "reconcile_daemons", lambda: {})  # the daemons' (0043): tests/workflows/test_daemons.py
    monkeypatch.setattr(jobs, "schedule_starting_workflows", lambda: {})  # tests/workflows/test_status.py
    out = jobs.every_minute({})
    assert out == {"deployments": {"error": "driver away"}, "gateways": {"default": "current"}, "slas": {},
                   "daemons": {}, "workflows": {}}
