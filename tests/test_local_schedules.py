"""The local stack fires the app's rate schedules, as EventBridge does on AWS."""
from __future__ import annotations

import threading

from chalice import Chalice
from chalice.app import Cron, Rate

from local.schedules import Scheduler, period_seconds


def test_periods():
    assert period_seconds(Rate(1, unit=Rate.MINUTES)) == 60
    assert period_seconds(Rate(2, unit=Rate.HOURS)) == 7200
    assert period_seconds("rate(5 minutes)") == 300
    assert period_seconds(Cron(0, 10, "*", "*", "?", "*")) is None


def test_scheduled_functions_fire(monkeypatch):
    import sys
    import types

    fired = threading.Event()
    seen = []
    app = Chalice(app_name="t")

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def tick(event):
        seen.append(event.detail_type)
        fired.set()

    module = types.ModuleType("schedules_test_app")
    module.tick = tick
    monkeypatch.setitem(sys.modules, "schedules_test_app", module)
    monkeypatch.setattr(app.event_sources[0], "handler_string", "schedules_test_app.tick")
    monkeypatch.setenv("VAMP_LOCAL_SCHEDULE_SECONDS", "0.05")
    scheduler = Scheduler(app)
    scheduler.start()
    try:
        assert fired.wait(5)
    finally:
        scheduler.stop()
    assert seen[0] == "Scheduled Event"


def test_what_counts_as_a_change():
    from local.schedules import changed

    quiet = {"deployments": {"default": {"deployments": 2, "changed": 0, "errors": []}}, "gateways": {"default": "current"}}
    assert not changed(quiet) and not changed(None) and not changed({})
    assert changed({**quiet, "deployments": {"default": {"deployments": 2, "changed": 1, "errors": []}}})
    assert changed({**quiet, "deployments": {"default": {"deployments": 2, "changed": 0, "errors": ["x: failed"]}}})
    assert changed({**quiet, "deployments": {"error": "table away"}})
    assert changed({**quiet, "gateways": {"default": "published"}})
    assert changed({**quiet, "gateways": {"default": "error: etcd away"}})


def test_first_run_at_once_and_a_change_is_followed_up_before_the_period(monkeypatch):
    """With a minute's period: run 1 at start, and runs that changed something are followed by
    another, so run 3 comes long before a minute (the test waits at most 20 s)."""
    import sys
    import types

    app = Chalice(app_name="t")
    runs = []
    third = threading.Event()

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def tick(event):
        runs.append(event.detail_type)
        if len(runs) >= 3:
            third.set()
        return {"deployments": {"default": {"changed": 1 if len(runs) < 3 else 0, "errors": []}}}

    module = types.ModuleType("schedules_follow_up_app")
    module.tick = tick
    monkeypatch.setitem(sys.modules, "schedules_follow_up_app", module)
    monkeypatch.setattr(app.event_sources[0], "handler_string", "schedules_follow_up_app.tick")
    monkeypatch.delenv("VAMP_LOCAL_SCHEDULE_SECONDS", raising=False)
    scheduler = Scheduler(app)
    scheduler.start()
    try:
        assert third.wait(20)
    finally:
        scheduler.stop()
    assert scheduler.runs["tick"] == 3
