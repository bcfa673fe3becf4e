"""One-off runs (a workflow's script or container breed, decision 0039) on the Kubernetes and ECS
drivers. Kubernetes: the Job manifest only, checked against the official schema (kubernetes-
validate's, as the fake API server checks everything) and the restricted Pod Security Standard;
the fake API server serves no Jobs, so creating one is not exercised here. ECS: on moto, which
accepts RunTask and StopTask but runs nothing: the calls' shape. The local driver runs for real
in tests/workflows/test_script_runs.py."""
from __future__ import annotations

import pytest

from chalicelib.drivers import Guarded
from chalicelib.drivers.base import DriverError, JobSpec
from chalicelib.drivers.ecs import DEADLINE_TAG, JOB_STARTED_BY, EcsDriver
from chalicelib.drivers.kube_policy import NamespacePolicy
from chalicelib.drivers.kubernetes import job_manifest
from tests.drivers.helpers import moto_ecs_cluster
from tests.fakes.kubernetes_server import pod_security_violations, schema_problem

SPEC = JobSpec(name="report", deployable_type="container/docker", definition="busybox:1.36",
               env={"VAMP_NAMESPACE": "team-a", "VAMP_API_TOKEN": "vamp_x", "PRICE": "$5"},
               labels={"workflow": "report"})


def test_the_job_manifest_is_valid_stops_at_the_timeout_and_never_retries():
    job = job_manifest("vamp-team-a", SPEC, 30.0, suffix="1")
    assert schema_problem(job) is None
    assert job["spec"]["activeDeadlineSeconds"] == 30 and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod_security_violations(pod, "restricted") == []
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["VAMP_NAMESPACE"] == "team-a" and env["PRICE"] == "$$5"  # literal, as on the other drivers
    assert job["metadata"]["labels"]["vamp.io/workflow"] == "report"
    assert job_manifest("n", SPEC, 30.0, suffix="2")["metadata"]["name"] != job["metadata"]["name"]


def test_the_job_manifest_refuses_commands():
    with pytest.raises(DriverError, match="container images"):
        job_manifest("n", JobSpec(name="x", deployable_type="command", definition="true"), 5.0,
                     NamespacePolicy())


@pytest.fixture()
def ecs(aws):
    client, cluster, subnet, group = moto_ecs_cluster(aws)
    yield EcsDriver(cluster, [subnet], [group], client=client), client, cluster


def test_ecs_runs_a_task_of_the_drivers_task_definition_tagged_with_its_deadline(ecs):
    driver, client, cluster = ecs
    result = Guarded(driver).run_job("team-a", SPEC, 30.0)
    assert result.state == "started" and result.handle.startswith("arn:aws:ecs:")
    [task] = client.describe_tasks(cluster=cluster, tasks=[result.handle], include=["TAGS"])["tasks"]
    assert task["startedBy"] == JOB_STARTED_BY
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["vamp:namespace"] == "team-a" and tags["vamp:workflow"] == "report" and tags[DEADLINE_TAG].isdigit()
    definition = client.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    assert container["image"] == "busybox:1.36"
    assert container["environment"] == []  # the run's environment (its token) is the task's only:
    [override] = task["overrides"]["containerOverrides"]
    assert override["name"] == "service"
    assert {e["name"]: e["value"] for e in override["environment"]}["VAMP_API_TOKEN"] == "vamp_x"
    assert definition["requiresCompatibilities"] == ["FARGATE"] and definition["networkMode"] == "awsvpc"
    assert definition["family"].startswith("workflow-")  # the families IAM lets RunTask run


def test_ecs_stops_the_runs_past_their_deadline_only_in_their_namespace(ecs):
    driver, client, cluster = ecs
    mine = driver.run_job("team-a", SPEC, 30.0).handle
    other = driver.run_job("team-b", SPEC, 30.0).handle
    deadline = int({t["key"]: t["value"] for t in client.describe_tasks(
        cluster=cluster, tasks=[mine], include=["TAGS"])["tasks"][0]["tags"]}[DEADLINE_TAG])
    assert driver.stop_overdue_jobs("team-a", now=deadline - 1) == []
    assert driver.stop_overdue_jobs("team-a", now=deadline + 1) == [mine]
    tasks = {t["taskArn"]: t for t in client.describe_tasks(cluster=cluster, tasks=[mine, other])["tasks"]}
    assert tasks[mine]["desiredStatus"] == "STOPPED" and "timeout" in tasks[mine]["stoppedReason"]
    assert tasks[other]["desiredStatus"] == "RUNNING"


def test_ecs_refuses_commands_as_a_failed_run(ecs):
    driver, _, _ = ecs
    result = Guarded(driver).run_job("team-a", JobSpec(name="x", deployable_type="command", definition="true"), 5.0)
    assert result.state == "failed" and "container images" in result.reason


def test_ecs_reports_the_stopped_runs_of_its_namespace(ecs):
    driver, client, cluster = ecs
    mine = driver.run_job("team-a", SPEC, 30.0).handle
    driver.run_job("team-b", SPEC, 30.0)
    assert driver.finished_jobs("team-a") == []  # still running
    driver.stop_overdue_jobs("team-a", now=10**10)
    [job] = driver.finished_jobs("team-a")
    assert job.handle == mine and job.workflow == "report" and "timeout" in job.reason
    assert not job.succeeded  # stopped at its deadline (moto says exit code 0 for tasks it never ran)
