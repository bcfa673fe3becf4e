"""The ECS driver against moto's ECS (which runs no tasks: status comes from the counts)."""
from __future__ import annotations

import pytest

from chalicelib.drivers import Guarded
from chalicelib.drivers.base import DriverError, PortSpec
from chalicelib.drivers.ecs import EcsDriver, fargate_size
from chalicelib.settings import settings
from tests.drivers.helpers import image_spec, moto_ecs_cluster


@pytest.fixture()
def ecs(aws):
    client, cluster, subnet, group = moto_ecs_cluster(aws)
    yield EcsDriver(cluster, [subnet], [group], client=client), client, cluster


def test_deploy_registers_a_task_definition_and_a_service(ecs):
    driver, client, cluster = ecs
    spec = image_spec()
    driver.deploy("team-a", spec)
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn], include=["TAGS"])["services"][0]
    assert service["desiredCount"] == 2 and service["launchType"] == "FARGATE"
    assert service["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == driver.subnets
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert (task["cpu"], task["memory"]) == ("256", "512") and task["networkMode"] == "awsvpc"
    (c,) = task["containerDefinitions"]
    assert c["image"] == "magneticio/sava:1.0.0" and c["cpu"] == 205 and c["memory"] == 256
    assert c["environment"] == [{"name": "A", "value": "1"}]
    assert c["portMappings"][0]["containerPort"] == 8080
    assert c["healthCheck"]["command"] == ["CMD-SHELL", "curl -fsk http://localhost:8080/health || exit 1"]
    assert c["healthCheck"]["retries"] == 3 and c["healthCheck"]["startPeriod"] == 10
    assert driver.running("team-a") == {spec.key: spec.digest()}
    assert driver.running("team-b") == {}
    st = driver.status("team-a", [spec.key, "x/y/z"])
    assert st[spec.key].state == "deploying" and st[spec.key].reason.startswith("0/2 tasks running")
    assert st[spec.key].digest == spec.digest() and st["x/y/z"].state == "absent"


def test_a_changed_spec_is_a_new_revision_of_the_same_service(ecs):
    driver, client, cluster = ecs
    driver.deploy("ns", image_spec())
    bigger = image_spec(instances=4, cpu=1.5, memory=3000.0, ports=(PortSpec("webport", 9090),), health_checks=())
    driver.deploy("ns", bigger)
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
    assert service["desiredCount"] == 4 and service["taskDefinition"].endswith(":2")
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert (task["cpu"], task["memory"]) == ("2048", "4096")
    assert driver.running("ns") == {bigger.key: bigger.digest()}


def test_undeploy_and_errors(ecs, aws):
    driver, client, cluster = ecs
    spec = image_spec()
    driver.deploy("ns", spec)
    driver.undeploy("ns", "sava", "sava", "sava:1.0.0")
    assert driver.running("ns") == {}
    driver.undeploy("ns", "sava", "sava", "sava:1.0.0")
    missing = Guarded(EcsDriver("no-such-cluster", [], [], client=client))
    st = missing.status("ns", [spec.key])[spec.key]
    assert st.state == "failed" and "no-such-cluster" in st.reason
    with pytest.raises(Exception, match="ecs"):
        missing.deploy("ns", spec)


def test_fargate_sizes():
    assert fargate_size(0.25, 512) == (256, 512)
    assert fargate_size(0.2, 1000) == (256, 1024)
    assert fargate_size(1, 1000) == (1024, 2048)
    assert fargate_size(4, 9000) == (4096, 9216)
    with pytest.raises(Exception):
        fargate_size(64, 1)


ROLE = "arn:aws:iam::123456789012:role/vamp-dev-EcsTaskExecutionRole-ABC"


def test_the_task_definition_has_the_execution_role_the_logs_and_the_network_of_the_settings(ecs, monkeypatch):
    _, client, cluster = ecs
    subnet, group = ecs[0].subnets[0], ecs[0].security_groups[0]
    monkeypatch.setenv("VAMP_ECS_CLUSTER", cluster)
    monkeypatch.setenv("VAMP_ECS_SUBNETS", f" {subnet} ,")
    monkeypatch.setenv("VAMP_ECS_SECURITY_GROUPS", group)
    monkeypatch.setenv("VAMP_ECS_ASSIGN_PUBLIC_IP", "DISABLED")
    monkeypatch.setenv("VAMP_ECS_EXECUTION_ROLE_ARN", ROLE)
    monkeypatch.setenv("VAMP_ECS_LOG_GROUP", "/vamp/vamp-dev/services")
    settings.cache_clear()
    try:
        driver = EcsDriver.from_settings()
    finally:
        settings.cache_clear()
    driver._client = client
    # a dialect may not send the logs elsewhere with the stack's role
    spec = image_spec(dialects={"ecs": {"logConfiguration": {"logDriver": "splunk", "options": {}}}})
    driver.deploy("team-a", spec)
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
    assert service["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["executionRoleArn"] == ROLE
    (c,) = task["containerDefinitions"]
    family = task["family"]
    assert c["logConfiguration"] == {"logDriver": "awslogs", "options": {
        "awslogs-group": "/vamp/vamp-dev/services", "awslogs-region": "us-east-1", "awslogs-stream-prefix": family}}
    assert family.startswith("team-a-sava-sava-sava-1-0-0-")


def test_by_default_tasks_get_a_public_address_and_no_role_or_logs(ecs):
    driver, client, cluster = ecs
    driver.deploy("ns", image_spec())
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
    # a default VPC's subnets are public: without a public address a task reaches no registry
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    task = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert "executionRoleArn" not in task and "logConfiguration" not in task["containerDefinitions"][0]


def test_an_update_applies_the_network_of_the_settings(ecs):
    driver, client, cluster = ecs
    driver.deploy("ns", image_spec())
    closed = EcsDriver(cluster, driver.subnets, driver.security_groups, client=client, assign_public_ip="DISABLED")
    closed.deploy("ns", image_spec(instances=3))
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
    assert service["desiredCount"] == 3
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


@pytest.mark.parametrize("env, message", [
    ({"VAMP_ECS_ASSIGN_PUBLIC_IP": "maybe"}, "VAMP_ECS_ASSIGN_PUBLIC_IP must be one of ENABLED, DISABLED, not 'maybe'"),
    ({"VAMP_ECS_SUBNETS": "subnet-0123abcd,sg-0123abcd"}, "VAMP_ECS_SUBNETS must hold subnet ids"),
    ({"VAMP_ECS_SECURITY_GROUPS": "default"}, "VAMP_ECS_SECURITY_GROUPS must hold security group ids"),
    ({"VAMP_ECS_EXECUTION_ROLE_ARN": "EcsTaskExecutionRole"}, "VAMP_ECS_EXECUTION_ROLE_ARN must hold an IAM role ARN"),
    ({"VAMP_ECS_LOG_GROUP": "/vamp/x"}, "VAMP_ECS_LOG_GROUP needs VAMP_ECS_EXECUTION_ROLE_ARN"),
])
def test_a_bad_setting_is_refused_naming_it(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    try:
        with pytest.raises((ValueError, DriverError)) as refused:
            EcsDriver.from_settings()
    finally:
        settings.cache_clear()
    assert message in str(refused.value)


def test_the_driver_refuses_a_bad_public_ip_value_given_directly():
    with pytest.raises(DriverError, match="VAMP_ECS_ASSIGN_PUBLIC_IP must be one of ENABLED, DISABLED, not 'maybe'"):
        EcsDriver("vamp", ["subnet-0123abcd"], [], assign_public_ip="maybe")


def test_an_unreachable_driver_is_a_failed_status_with_the_setting_named(monkeypatch):
    # what the API shows for every service when the operator's setting is wrong
    from chalicelib import drivers

    monkeypatch.setenv("VAMP_DRIVER", "ecs")
    monkeypatch.setenv("VAMP_ECS_SUBNETS", "subnet-nothex")
    monkeypatch.setattr(drivers, "_DRIVERS", {})
    settings.cache_clear()
    try:
        st = drivers.driver_for("ns").status("ns", ["a/b/c"])["a/b/c"]
    finally:
        settings.cache_clear()
    assert st.state == "failed" and "VAMP_ECS_SUBNETS must hold subnet ids" in st.reason


def test_a_variable_wholly_a_secret_is_read_by_the_task_not_written_in_its_definition(ecs):
    driver, client, cluster = ecs
    sm = "arn:aws:secretsmanager:us-east-1:123456789012:secret:vamp/db-AbCdEf:password::v1"
    spec = image_spec(env={"A": "1", "DB_PASSWORD": "hunter2", "DB_URL": "postgres://u:hunter2@db"},
                      secret_sources={"DB_PASSWORD": sm})
    with_role = EcsDriver(cluster, driver.subnets, driver.security_groups, client=client, execution_role_arn=ROLE)
    with_role.deploy("ns", spec)
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
    (c,) = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]["containerDefinitions"]
    assert c["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": sm}]
    # a secret inside a longer value has no valueFrom: it stays a value
    assert c["environment"] == [{"name": "A", "value": "1"}, {"name": "DB_URL", "value": "postgres://u:hunter2@db"}]
    # without an execution role no task could read it: the value, as before
    driver.deploy("other", spec)
    (c,) = client.describe_task_definition(taskDefinition=driver._name("other", "sava", "sava", "sava:1.0.0"))[
        "taskDefinition"]["containerDefinitions"]
    assert "secrets" not in c and {"name": "DB_PASSWORD", "value": "hunter2"} in c["environment"]


def test_a_services_arguments_are_its_container_definitions_fields_or_refused(ecs):
    import dataclasses

    from chalicelib.drivers import DriverError

    driver, client, cluster = ecs
    spec = dataclasses.replace(image_spec(), arguments=(("init", "true"), ("read-only", "true"),
                                                        ("ulimit", "nofile=1024:4096")))
    driver.deploy("team-a", spec)
    (arn,) = client.list_services(cluster=cluster)["serviceArns"]
    service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
    (c,) = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"][
        "containerDefinitions"]
    assert c["linuxParameters"]["initProcessEnabled"] is True and c["readonlyRootFilesystem"] is True
    assert c["ulimits"] == [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]
    with pytest.raises(DriverError, match="argument 'privileged'.*Fargate"):
        driver.deploy("team-a", dataclasses.replace(image_spec(), service="web:2", arguments=(("privileged", "true"),)))
    assert len(client.list_services(cluster=cluster)["serviceArns"]) == 1  # nothing made of the refused one
