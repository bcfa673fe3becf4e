"""The ECS driver against moto's ECS (which runs no tasks: status comes from the counts)."""
from __future__ import annotations

import uuid

import boto3
import pytest

from chalicelib.drivers import Guarded
from chalicelib.drivers.base import PortSpec
from chalicelib.drivers.ecs import EcsDriver, fargate_size
from tests.drivers.helpers import image_spec


@pytest.fixture()
def ecs(aws):
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=aws)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"g{uuid.uuid4().hex[:6]}", Description="t", VpcId=vpc)["GroupId"]
    client = boto3.client("ecs", region_name="us-east-1", endpoint_url=aws)
    cluster = f"vamp-{uuid.uuid4().hex[:6]}"
    client.create_cluster(clusterName=cluster)
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
