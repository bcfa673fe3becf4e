"""The deployments API on moto with the local driver (no gateways published: no etcd here)."""
from __future__ import annotations

from chalicelib.deployments.sync import sync_namespace
from chalicelib.drivers.local import LocalDriver
from tests.drivers.helpers import SERVER, wait_for

NS = "deps"


def bp(version="1", deployable=None, **service) -> dict:
    return {"name": "shop", "clusters": {"web": {"services": [{"breed": {
        "name": f"web:{version}", "deployable": deployable or {"type": "command", "definition": SERVER},
        "ports": {"port": "8080/http"}, "environment_variables": {"VERSION": version}}, **service}]}}}


def services(api, name="shop"):
    return [s for c in api.get(f"/{NS}/api/v1/deployments/{name}").json["clusters"].values() for s in c["services"]]


def cleanup(api):
    api.delete(f"/{NS}/api/v1/deployments/shop?force=true")
    LocalDriver().undeploy_namespace(NS)


def test_post_get_list_as_blueprint_scale_and_delete(api):
    try:
        r = api.post(f"/{NS}/api/v1/deployments", bp(scale={"cpu": 0.1, "memory": "64MB", "instances": 1}))
        assert r.status_code == 202, r.body
        assert r.json["name"] == "shop" and r.headers["ETag"]
        assert api.get(f"/{NS}/api/v1/breeds/web:1").status_code == 200  # inline breeds are stored
        r = api.get(f"/{NS}/api/v1/deployments")
        assert r.status_code == 200 and r.headers["X-Total-Count"] == "1" and r.json[0]["name"] == "shop"
        shown = api.get(f"/{NS}/api/v1/deployments/shop?as_blueprint=true").json
        assert shown["kind"] == "blueprints" and shown["clusters"]["web"]["services"][0]["breed"] == {
            "reference": "web:1"}
        wait_for(lambda: sync_namespace(NS) and services(api)[0]["status"]["phase"]["name"] == "done", 15)

        scale = f"/{NS}/api/v1/deployments/shop/clusters/web/services/web:1/scale"
        assert api.get(scale).json == {"cpu": 0.1, "memory": "64MB", "instances": 1}
        r = api.put(scale, {"cpu": 0.1, "memory": "64MB", "instances": 2})
        assert r.status_code == 202
        wait_for(lambda: sync_namespace(NS) and len(services(api)[0]["instances"]) == 2, 15)
        assert len(LocalDriver().pids(NS, "shop/web/web:1")) == 2

        sla = f"/{NS}/api/v1/deployments/shop/clusters/web/sla"
        assert api.get(sla).status_code == 404
        body = {"type": "response_time_sliding_window", "threshold": {"upper": 1000, "lower": 100},
                "window": {"interval": 600, "cooldown": 600}}
        assert api.put(sla, body).status_code == 202
        assert api.get(sla).json["type"] == "response_time_sliding_window"
        assert api.delete(sla).status_code == 204

        assert api.delete(f"/{NS}/api/v1/deployments/shop").status_code == 202
        wait_for(lambda: sync_namespace(NS) and api.get(f"/{NS}/api/v1/deployments/shop").status_code == 404, 15)
        assert LocalDriver().running(NS) == {}
    finally:
        cleanup(api)


def test_bad_input_is_400_with_nothing_written(api):
    r = api.post(f"/{NS}/api/v1/deployments", {"name": "shop", "clusters": {"web": {"services": [
        {"breed": "nope:1"}]}}})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "clusters.web.services[0].breed"
    r = api.post(f"/{NS}/api/v1/deployments", {"name": "shop"})
    assert r.status_code == 400
    assert api.post(f"/{NS}/api/v1/deployments", "no-such-blueprint").status_code == 400
    assert api.post(f"/{NS}/api/v1/deployments?validate_only=true", bp()).status_code == 202
    assert api.get(f"/{NS}/api/v1/deployments/shop").status_code == 404
    assert api.delete(f"/{NS}/api/v1/deployments/shop").status_code == 404
    assert api.get(f"/{NS}/api/v1/deployments/shop/clusters/web/services/x/scale").status_code == 404


def test_a_stored_blueprint_by_reference(api):
    try:
        assert api.post(f"/{NS}/api/v1/blueprints", bp()).status_code == 201
        r = api.post(f"/{NS}/api/v1/deployments", {"reference": "shop"})
        assert r.status_code == 202 and r.json["clusters"]["web"]["services"][0]["breed"]["name"] == "web:1"
    finally:
        cleanup(api)


def test_driver_failures_are_a_status_with_a_reason_then_retried_and_deletable(api):
    try:
        r = api.post(f"/{NS}/api/v1/deployments", bp(deployable="magneticio/sava:1.0.0"))
        assert r.status_code == 202
        (s,) = services(api)
        assert s["status"]["phase"]["name"] == "failed"
        assert "runs `command` deployables only" in s["status"]["phase"]["notification"]
        assert "retry in 5s" in s["status"]["phase"]["notification"] and s["attempts"] == 1
        sync_namespace(NS)  # not due yet: no new attempt
        assert services(api)[0]["attempts"] == 1
        # a failed deployment can always be deleted
        assert api.delete(f"/{NS}/api/v1/deployments/shop").status_code == 202
        wait_for(lambda: sync_namespace(NS) and api.get(f"/{NS}/api/v1/deployments/shop").status_code == 404, 15)
    finally:
        cleanup(api)


def test_unfilled_environment_fails_with_the_variable_named(api):
    try:
        doc = bp()
        doc["clusters"]["web"]["services"][0]["breed"]["environment_variables"]["SECRET"] = None
        assert api.post(f"/{NS}/api/v1/deployments", doc).status_code == 202
        (s,) = services(api)
        assert s["status"]["phase"]["name"] == "failed" and "SECRET is `~`" in s["status"]["phase"]["notification"]
        doc["environment_variables"] = {"web.SECRET": "x"}
        assert api.put(f"/{NS}/api/v1/deployments/shop", doc).status_code == 202
        wait_for(lambda: sync_namespace(NS) and services(api)[0]["status"]["phase"]["name"] == "done", 15)
    finally:
        cleanup(api)


def test_an_internal_gateway_belongs_to_its_deployment(api):
    """Vamp's rule: through the gateway API an internal gateway's weights change, its set of
    routes does not, and it cannot be deleted while its deployment exists."""
    try:
        assert api.post(f"/{NS}/api/v1/deployments", bp()).status_code == 202
        assert api.put(f"/{NS}/api/v1/deployments/shop", bp("2")).status_code == 202
        url = f"/{NS}/api/v1/gateways/shop%2Fweb%2Fport"
        gateway = api.get(url).json
        assert gateway["metadata"]["deployment"] == "shop"
        routes = dict(gateway["routes"])

        shifted = {k: {**v, "weight": "50%"} for k, v in routes.items()}
        r = api.put(url, {"name": "shop/web/port", "routes": shifted})
        assert r.status_code == 202, r.body
        assert api.get(url).json["metadata"]["deployment"] == "shop"  # still the deployment's

        first = next(iter(routes))
        r = api.put(url, {"name": "shop/web/port", "routes": {first: {"weight": "100%"}}})
        assert r.status_code == 400 and r.json["errors"][0]["path"] == "routes"
        r = api.delete(url)
        assert r.status_code == 409 and "deployment shop" in r.json["errors"][0]["reason"]
        assert api.get(url).status_code == 200
    finally:
        cleanup(api)
