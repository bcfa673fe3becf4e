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
