"""An image pushed to ECR starts a release of the deployments running that repository."""
from __future__ import annotations

import pytest

from chalicelib.automations.ecr import policy_named, push_of, repository_of
from tests.automations.conftest import DIGEST1, DIGEST2, REGISTRY, automation_events, push
from tests.releases.conftest import policy


def shop(metadata=None, repository="shop/web", cluster="web"):
    doc = {"name": "shop", "clusters": {cluster: {"services": [{"breed": {
        "name": "web:1.0", "deployable": f"{REGISTRY}/{repository}@{DIGEST1}", "ports": {"web": "8080/http"}}}]}}}
    if metadata is not None:
        doc["metadata"] = metadata
    return doc


@pytest.fixture()
def stored(api, sfn):
    r = api.post("/api/v1/release-policies", {"name": "safe", **policy(interval="30s")})
    assert r.status_code in (201, 202), r.body

    def deploy(doc):
        r = api.post("/api/v1/deployments", doc)
        assert r.status_code == 202, r.body
        return r.json
    return deploy


def releases(api):
    r = api.get("/api/v1/releases")
    assert r.status_code == 200, r.body
    return r.json


def test_a_push_starts_one_release_with_the_named_policy(api, bus, events_client, stored):
    doc = shop({"release_policy": "safe"})
    doc["clusters"]["web"]["services"][0]["breed"]["environment_variables"] = {"MODE": "slow"}
    doc["clusters"]["web"]["services"][0].update(environment_variables={"MODE": "fast"}, scale={
        "cpu": 0.5, "memory": "256MB", "instances": 2})
    stored(doc)
    push(events_client, bus)
    assert bus.deliveries["ecr_image_pushed"] == 1
    (release,) = releases(api)
    name = "ecr-shop-web-" + "2" * 12
    assert release["name"] == name and release["phase"] == "progressing", release
    assert release["spec"]["policy"] == {"reference": "safe"}
    assert release["spec"]["gateway"] == "shop/web/web"
    assert release["spec"]["stable"] == "shop/web/web:1.0/web"
    assert release["spec"]["canary"] == "shop/web/web:2.0/web"
    dep = api.get("/api/v1/deployments/shop").json
    services = {s["breed"]["name"]: s for s in dep["clusters"]["web"]["services"]}
    assert services["web:2.0"]["breed"]["deployable"]["definition"] == f"{REGISTRY}/shop/web@{DIGEST2}"
    assert services["web:2.0"]["environment_variables"] == {"MODE": "fast"}  # as the stable service runs
    assert services["web:2.0"]["scale"] == services["web:1.0"]["scale"] and services["web:2.0"]["scale"]["instances"] == 2
    assert services["web:2.0"]["breed"]["ports"] == services["web:1.0"]["breed"]["ports"]
    assert dep["clusters"]["web"]["gateways"]["web"]["routes"]["web:2.0"]["weight"] == "0%"
    (started,) = automation_events(api, "ecr:started")
    assert started["value"]["release"] == name and started["value"]["policy"] == "safe"

    push(events_client, bus)  # EventBridge delivers at least once: the same push again
    assert bus.deliveries["ecr_image_pushed"] == 2
    assert [r["name"] for r in releases(api)] == [name]
    (refused,) = automation_events(api, "ecr:refused")
    assert refused["value"]["reason"].startswith("already released") and refused["value"]["release"] == name
    assert api.post(f"/api/v1/releases/{name}/abort").status_code == 202


def test_a_push_to_another_repository_does_nothing(api, bus, events_client, stored):
    stored(shop({"release_policy": "safe"}))
    push(events_client, bus, repository="shop/webby")
    push(events_client, bus, repository="other/web")
    assert bus.deliveries["ecr_image_pushed"] == 2
    assert releases(api) == []
    assert automation_events(api, "ecr") == []
    services = api.get("/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in services] == ["web:1.0"]


def test_no_policy_named_is_refused_with_an_event(api, bus, events_client, stored):
    stored(shop())
    push(events_client, bus)
    assert releases(api) == []
    (refused,) = automation_events(api, "ecr:refused")
    assert "no release policy named" in refused["value"]["reason"]
    assert refused["value"]["deployment"] == "shop" and refused["value"]["digest"] == DIGEST2
    services = api.get("/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in services] == ["web:1.0"]  # nothing merged


def test_the_digest_already_deployed_is_refused(api, bus, events_client, stored):
    stored(shop({"release_policy": {"web": "safe"}}))
    push(events_client, bus, digest=DIGEST1, tag="1.0")
    assert releases(api) == []
    (refused,) = automation_events(api, "ecr:refused")
    assert refused["value"]["reason"].startswith("digest already deployed")


def test_an_unknown_policy_is_refused(api, bus, events_client, stored):
    stored(shop({"release_policy": "nope"}))
    push(events_client, bus)
    (refused,) = automation_events(api, "ecr:refused")
    assert refused["value"]["reason"] == "release policy 'nope' does not exist"


def test_a_cluster_serving_two_ports_is_refused_and_nothing_merged(api, bus, events_client, stored):
    doc = shop({"release_policy": "safe"})
    doc["clusters"]["web"]["services"][0]["breed"]["ports"] = {"web": "8080/http", "admin": "8081/http"}
    stored(doc)
    push(events_client, bus)
    assert releases(api) == []
    (refused,) = automation_events(api, "ecr:refused")
    assert refused["value"]["reason"].startswith("the cluster serves 2 ports (admin, web)"), refused
    assert refused["value"]["ports"] == ["admin", "web"]
    services = api.get("/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in services] == ["web:1.0"]  # nothing merged


def test_a_failed_or_other_action_reaches_no_handler(api, bus, events_client, stored):
    stored(shop({"release_policy": "safe"}))
    push(events_client, bus, result="FAILURE")
    push(events_client, bus, action="DELETE")
    assert bus.deliveries["ecr_image_pushed"] == 0
    assert releases(api) == []


def test_push_parsing():
    event = {"source": "aws.ecr", "account": "123456789012", "region": "eu-west-1", "id": "x",
             "detail": {"result": "SUCCESS", "action-type": "PUSH", "repository-name": "a/b",
                        "image-digest": DIGEST2, "image-tag": "v1"}}
    p = push_of(event)
    assert p.image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/a/b" and p.tag == "v1" and p.short == "2" * 12
    assert push_of({**event, "detail": {**event["detail"], "image-digest": "sha256:xyz"}}) is None
    assert push_of({**event, "detail": {**event["detail"], "result": "FAILURE"}}) is None
    assert push_of({**event, "region": "cn-north-1"}).registry.endswith(".amazonaws.com.cn")
    assert repository_of("r.example:5000/a/b:1.0@sha256:00") == "r.example:5000/a/b"
    assert repository_of("r.example:5000/a/b") == "r.example:5000/a/b"
    assert policy_named({"release_policy": "safe"}, "web") == "safe"
    assert policy_named({"release_policy": {"api": "safe"}}, "web") is None


def test_every_deployment_of_the_repository_in_every_namespace_and_no_other(api, bus, events_client, stored):
    stored(shop({"release_policy": "safe"}))
    stored({**shop({"release_policy": "safe"}, repository="cart/web"), "name": "cart"})
    r = api.post("/team-a/api/v1/release-policies", {"name": "safe", **policy(interval="30s")})
    assert r.status_code in (201, 202), r.body
    r = api.post("/team-a/api/v1/deployments", shop({"release_policy": "safe"}))
    assert r.status_code == 202, r.body
    push(events_client, bus)
    name = "ecr-shop-web-" + "2" * 12
    assert [r["name"] for r in releases(api)] == [name]
    assert [r["name"] for r in api.get("/team-a/api/v1/releases").json] == [name]
    cart = api.get("/api/v1/deployments/cart").json["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in cart] == ["web:1.0"]
    for prefix in ("", "/team-a"):
        assert api.post(f"{prefix}/api/v1/releases/{name}/abort").status_code == 202


def test_a_release_running_on_the_gateway_refuses_the_next_push(api, bus, events_client, stored):
    stored(shop({"release_policy": "safe"}))
    push(events_client, bus)
    push(events_client, bus, tag="3.0", digest="sha256:" + "3" * 64)
    first = "ecr-shop-web-" + "2" * 12
    assert [r["name"] for r in releases(api)] == [first]
    (refused,) = automation_events(api, "ecr:refused")
    assert refused["value"]["reason"] == f"release {first} is running on gateway shop/web/web"
    services = api.get("/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in services] == ["web:1.0", "web:2.0"]  # 3.0 not merged
    assert api.post(f"/api/v1/releases/{first}/abort").status_code == 202


def test_two_deliveries_at_once_start_one_release(api, bus, events_client, stored):
    import json

    stored(shop({"release_policy": "safe"}))
    entry = {"Source": "aws.ecr", "DetailType": "ECR Image Action", "Detail": json.dumps({
        "result": "SUCCESS", "repository-name": "shop/web", "image-digest": DIGEST2, "action-type": "PUSH",
        "image-tag": "2.0"})}
    assert events_client.put_events(Entries=[entry, entry])["FailedEntryCount"] == 0  # two deliveries, two threads
    bus.drain()
    assert bus.deliveries["ecr_image_pushed"] == 2
    name = "ecr-shop-web-" + "2" * 12
    assert [r["name"] for r in releases(api)] == [name]
    outcomes = automation_events(api, "ecr")
    assert sorted(t for e in outcomes for t in e["tags"] if t.startswith("ecr:")) == ["ecr:refused", "ecr:started"]
    services = api.get("/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in services] == ["web:1.0", "web:2.0"]
    assert api.post(f"/api/v1/releases/{name}/abort").status_code == 202
