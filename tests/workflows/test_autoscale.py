"""The `autoscale` built-in: each service a gateway's deployment routes reach gets instances from
its share of the requests (share x maximum, rounded up, between the minimum and the maximum);
nothing while a release holds the gateway; the real writer is the scale PUT's path."""
from __future__ import annotations

from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.workflows import runs
from chalicelib.workflows.builtin_runs import Writers, instances_for

OLD, NEW = "shop/web/web:1/port", "shop/web/web:2/port"
ENV = {"VAMP_GATEWAY": "shop/9074", "VAMP_AUTOSCALE_MINIMUM": "1", "VAMP_AUTOSCALE_MAXIMUM": "10"}


def _seed(api, store):
    gateway = {"name": "shop/9074", "port": "9074/http", "routes": {OLD: {"weight": "80%"}, NEW: {"weight": "20%"}}}
    workflow = {"name": "a", "breed": {"reference": "autoscale"}, "schedule": {"time": {"period": "PT1M"}},
                "status": "running", "environment_variables": ENV}
    store.apply("default", [Write("gateways", "shop/9074", gateway, None), Write("workflows", "a", workflow, None)])
    events = [{"tags": ["gateways:shop/9074", f"routes:{route}", "metrics:requests"], "type": "metrics", "value": n}
              for route, n in ((OLD, 300), (NEW, 60), (OLD, 100), (NEW, 40))]
    assert api.post("/api/v1/events", events, token=api.token_of("agent")).status_code == 201


def test_instances_from_each_services_share(api):
    store, calls = DynamoDBArtifactStore(), []
    _seed(api, store)
    writers = Writers(scale_service=lambda *a: calls.append(a), releasing=lambda ns, g: None)
    assert runs.run(store, "default", "a", None, writers)["exit_code"] == 0
    assert sorted(calls) == [("default", "shop", "web", "web:1", 8), ("default", "shop", "web", "web:2", 2)]
    shares = {e["value"]["service"]: e["value"]["share"] for e in event_store().query(
        "default", EventQuery(tags=["autoscale"], type="autoscale", per_page=10)).items}
    assert shares == {"web:1": 0.8, "web:2": 0.2}


def test_never_while_a_release_holds_the_gateway(api):
    store, calls = DynamoDBArtifactStore(), []
    _seed(api, store)
    writers = Writers(scale_service=lambda *a: calls.append(a), releasing=lambda ns, g: "sava-canary")
    runs.run(store, "default", "a", None, writers)
    assert calls == []
    [held] = event_store().query("default", EventQuery(tags=["autoscale:held"], per_page=10)).items
    assert held["value"]["release"] == "sava-canary"


def test_bounds():
    assert instances_for({"a": 0.0, "b": 1.0}, 2, 6) == {"a": 2, "b": 6}
    assert instances_for({"a": 0.31}, 1, 10) == {"a": 4}
    assert instances_for({"a": 0.3}, 1, 10) == {"a": 3}


def test_bad_autoscale_settings_are_a_400(api):
    for env, path in (({}, "environment_variables.VAMP_GATEWAY"),
                      ({**ENV, "VAMP_AUTOSCALE_MAXIMUM": "0"}, "environment_variables.VAMP_AUTOSCALE_MAXIMUM"),
                      ({**ENV, "VAMP_AUTOSCALE_MINIMUM": "5", "VAMP_AUTOSCALE_MAXIMUM": "2"},
                       "environment_variables.VAMP_AUTOSCALE_MAXIMUM")):
        r = api.post("/api/v1/workflows", {"name": "a", "breed": "autoscale", "schedule": {"time": "PT1M"},
                                           "environment_variables": env})
        assert r.status_code == 400 and r.json["errors"][0]["path"] == path, (env, r.json)


def test_the_real_writer_is_the_scale_path(api):
    from chalicelib.api.routes import workflows as workflow_routes
    from chalicelib.drivers.local import LocalDriver
    from tests.drivers.helpers import SERVER

    blueprint = {"name": "shop", "clusters": {"web": {"services": [{"breed": {
        "name": "web:1", "deployable": {"type": "command", "definition": SERVER}, "ports": {"port": "8080/http"}},
        "scale": {"cpu": 0.1, "memory": "64MB", "instances": 1}}]}}}
    try:
        assert api.post("/wfauto/api/v1/deployments", blueprint).status_code == 202
        workflow_routes.scale_service("wfauto", "shop", "web", "web:1", 3)
        scale = api.get("/wfauto/api/v1/deployments/shop/clusters/web/services/web:1/scale").json
        assert scale["instances"] == 3
        assert workflow_routes.releasing("wfauto", "shop/9074") is None
    finally:
        api.delete("/wfauto/api/v1/deployments/shop?force=true")
        LocalDriver().undeploy_namespace("wfauto")
