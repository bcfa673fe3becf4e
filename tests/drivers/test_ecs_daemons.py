"""Daemon workflows on ECS (decision 0043) against moto's ECS server: a service of one task of a
`workflow-*` family, replaced in place, removed at stop, never seen (nor undeployed) by the
deployments' synchronisation."""
from __future__ import annotations

import pytest

from chalicelib import drivers
from chalicelib.drivers.base import DriverError, JobSpec
from chalicelib.drivers.ecs import EcsDriver
from tests.drivers.helpers import image_spec, moto_ecs_cluster


@pytest.fixture()
def ecs(aws):
    client, cluster, subnet, group = moto_ecs_cluster(aws)
    yield EcsDriver(cluster, [subnet], [group], client=client), client, cluster


def _spec(**env) -> JobSpec:
    return JobSpec(name="watcher", deployable_type="container/docker", definition="busybox:1.36",
                   env={"VAMP_API_TOKEN": "vamp_secret", **env}, labels={"workflow": "watcher", "token": "daemon@t.1"})


def _service(client, cluster):
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    return client.describe_services(cluster=cluster, services=[arn], include=["TAGS"])["services"][0]


def test_a_daemon_is_a_service_of_one_task_of_a_workflow_family(ecs):
    driver, client, cluster = ecs
    sent = []  # moto does not answer deploymentConfiguration back: the request is checked
    client.meta.events.register("provide-client-params.ecs.CreateService", lambda params, **_: sent.append(params))
    handle = driver.run_daemon("team-a", _spec(COLOUR="red"))
    service = _service(client, cluster)
    assert handle == service["serviceArn"] and service["desiredCount"] == 1
    [create] = sent
    assert create["deploymentConfiguration"] == {"maximumPercent": 100, "minimumHealthyPercent": 0}  # one at a time
    tags = {t["key"]: t["value"] for t in service["tags"]}
    assert tags == {"vamp:namespace": "team-a", "vamp:daemon": "watcher", "vamp:token-name": "daemon@t.1"}
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["family"].startswith("workflow-") and task["family"] == service["serviceName"]  # IAM's families
    (container,) = task["containerDefinitions"]
    assert container["image"] == "busybox:1.36"
    assert {"name": "COLOUR", "value": "red"} in container["environment"]
    [status] = driver.daemons("team-a").values()
    assert (status.name, status.token_name) == ("watcher", "daemon@t.1")
    assert status.handle.startswith(handle + "#")  # the service and its primary deployment: restarts count per deployment
    assert status.state == "starting"  # moto runs no task
    assert driver.daemons("team-b") == {}


def test_run_again_replaces_it_in_place_and_stop_removes_it(ecs):
    driver, client, cluster = ecs
    first = driver.run_daemon("ns", _spec())
    again = driver.run_daemon("ns", _spec(VAMP_API_TOKEN="vamp_fresh"))
    assert again == first
    service = _service(client, cluster)
    assert service["taskDefinition"].endswith(":2") and service["desiredCount"] == 1
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert {"name": "VAMP_API_TOKEN", "value": "vamp_fresh"} in task["containerDefinitions"][0]["environment"]
    driver.stop_daemon("ns", "watcher")
    assert driver.daemons("ns") == {}
    driver.stop_daemon("ns", "watcher")  # nothing there: not an error


def test_deployments_and_daemons_never_see_each_other(ecs):
    driver, _, _ = ecs
    driver.deploy("ns", image_spec())
    driver.run_daemon("ns", _spec())
    assert list(driver.running("ns")) == [image_spec().key]  # sync would undeploy what it lists
    assert list(driver.daemons("ns")) == ["watcher"]


def test_errors_are_driver_errors(ecs, aws):
    driver, client, cluster = ecs
    with pytest.raises(DriverError, match="container images"):
        driver.run_daemon("ns", JobSpec(name="x", deployable_type="command", definition="sleep 1"))
    gone = EcsDriver("no-such-cluster", driver.subnets, driver.security_groups, client=client)
    with pytest.raises(DriverError):
        gone.daemons("ns")
    assert drivers.Guarded(gone).daemons("ns") is None  # the pass then changes nothing


@pytest.fixture()
def ecs_namespace(aws):
    from chalicelib.settings import settings

    client, cluster, subnet, group = moto_ecs_cluster(aws)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"VAMP_NAMESPACE_DRIVERS": "team-a=ecs", "VAMP_ECS_CLUSTER": cluster,
                           "VAMP_ECS_SUBNETS": subnet, "VAMP_ECS_SECURITY_GROUPS": group}.items():
            patch.setenv(key, value)
        settings.cache_clear()
        drivers.reset()
        yield client, cluster
    settings.cache_clear()
    drivers.reset()


def test_a_daemon_workflow_on_ecs_through_the_api(api, ecs_namespace):
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from chalicelib.store.event_backend import event_store
    from chalicelib.store.tokens import DynamoDBTokenStore
    from chalicelib.workflows import daemons

    client, cluster = ecs_namespace
    assert api.post("/team-a/api/v1/breeds", {"name": "img", "deployable": "busybox:1.36"}).status_code == 201
    assert api.post("/team-a/api/v1/workflows", {"name": "w", "breed": "img", "schedule": "daemon"}).status_code == 202
    assert api.get("/team-a/api/v1/workflows/w/status").json == "running"
    service = _service(client, cluster)
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    env = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
    assert env["VAMP_NAMESPACE"] == "team-a" and env["VAMP_WORKFLOW_NAME"] == "w"
    assert DynamoDBTokenStore().authenticate(env["VAMP_API_TOKEN"]).namespaces == ("team-a",)

    assert api.put("/team-a/api/v1/workflows/w/status", "restart").json == "running"
    service = _service(client, cluster)
    assert service["taskDefinition"].endswith(":2")  # replaced in place, with a new token
    assert DynamoDBTokenStore().authenticate(env["VAMP_API_TOKEN"]) is None

    assert daemons.reconcile(DynamoDBArtifactStore(), "team-a", event_store(), event_store().publish) == {}
    assert api.put("/team-a/api/v1/workflows/w/status", "suspend").json == "suspended"
    assert [s for s in client.describe_services(cluster=cluster, services=[service["serviceName"]])["services"]
            if s["status"] == "ACTIVE"] == []
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]


def test_restarts_are_counted_from_the_services_events():
    """ECS's own words (DescribeServices `events`, newest first); moto writes none, so the shape is
    written here as ECS answers it."""
    from datetime import datetime, timedelta, timezone

    from chalicelib.drivers.ecs import daemon_restarts

    t0 = datetime(2026, 12, 4, 4, 0, tzinfo=timezone.utc)

    def event(minutes, message):
        return {"id": str(minutes), "createdAt": t0 + timedelta(minutes=minutes), "message": message}

    service = {"deployments": [{"id": "ecs-svc/2", "status": "PRIMARY", "createdAt": t0}], "events": [
        event(9, "(service workflow-a) has started 1 tasks: (task c)."),
        event(8, "(service workflow-a) has reached a steady state."),
        event(5, "(service workflow-a) has started 1 tasks: (task b)."),
        event(1, "(service workflow-a) has started 1 tasks: (task a)."),
        event(-3, "(service workflow-a) has started 1 tasks: (task of the previous deployment)."),
    ]}
    assert daemon_restarts(service) == 2  # a, then b and c after it stopped
    assert daemon_restarts({**service, "events": service["events"][3:]}) == 0
    assert daemon_restarts({"deployments": [], "events": []}) is None
