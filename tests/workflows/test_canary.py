"""The `canary` built-in, Vamp's recipe: every run, any 5xx on the gateway within the window rolls
back to 100/0; otherwise `step` points move from the old route to the new, the gateway written
through the API's write path."""
from __future__ import annotations

import app
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery

OLD, NEW = "[127.0.0.1:8081]", "[127.0.0.1:8082]"
ENV = {"VAMP_GATEWAY": "web", "VAMP_CANARY_FROM": OLD, "VAMP_CANARY_TO": NEW, "VAMP_CANARY_STEP": "30"}


def _weights(api):
    routes = api.get("/api/v1/gateways/web").json["routes"]
    return routes[OLD]["weight"], routes[NEW]["weight"]


def _setup(api, env=ENV):
    gateway = {"name": "web", "port": "9073/http", "routes": {OLD: {"weight": "100%"}, NEW: {"weight": "0%"}}}
    assert api.post("/api/v1/gateways", gateway).status_code == 202
    workflow = {"name": "c", "breed": "canary", "schedule": {"time": "PT5S"}, "environment_variables": env}
    return api.post("/api/v1/workflows", workflow)


def _run():
    return app.workflow_run({"namespace": "default", "workflow": "c"}, None)


def test_steps_to_the_new_route_then_stops(api):
    assert _setup(api).status_code == 202
    for expected in (("70%", "30%"), ("40%", "60%"), ("10%", "90%"), ("0%", "100%"), ("0%", "100%")):
        assert _run()["exit_code"] == 0
        assert _weights(api) == expected
    actions = [e["value"]["action"] for e in event_store().query(
        "default", EventQuery(tags=["gateways:web", "canary"], per_page=10)).items]
    assert actions == ["done", "step", "step", "step", "step"]  # newest first


def test_any_5xx_in_the_window_rolls_back(api):
    _setup(api)
    _run()
    assert _weights(api) == ("70%", "30%")
    events = [{"tags": ["gateways:web", f"routes:{NEW}", "metrics:errors"], "type": "metrics", "value": 2},
              {"tags": ["gateways:web", "metrics:errors"], "type": "metrics", "value": 2}]
    assert api.post("/api/v1/events", events, token=api.token_of("agent")).status_code == 201
    outcome = _run()
    assert outcome["exit_code"] == 0 and "2 5xx" in outcome["log"][0]
    assert _weights(api) == ("100%", "0%")
    [rollback] = event_store().query("default", EventQuery(tags=["canary:rollback"], per_page=10)).items
    assert rollback["value"]["errors"] == 2 and rollback["value"]["after"] == [100, 0]


def test_a_canary_without_its_gateway_or_routes_is_a_400(api):
    r = _setup(api, {"VAMP_GATEWAY": "web"})
    assert r.status_code == 400
    assert {e["path"] for e in r.json["errors"]} == {"environment_variables.VAMP_CANARY_FROM",
                                                      "environment_variables.VAMP_CANARY_TO"}
    r = api.post("/api/v1/workflows", {"name": "d", "breed": "canary", "schedule": {"time": "PT5S"},
                                       "environment_variables": {**ENV, "VAMP_CANARY_STEP": "0"}})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "environment_variables.VAMP_CANARY_STEP"


def test_a_route_the_gateway_does_not_have_fails_the_run(api):
    _setup(api, {**ENV, "VAMP_CANARY_TO": "[127.0.0.1:9999]"})
    outcome = _run()
    assert "no route" in outcome["error"] and _weights(api) == ("100%", "0%")
