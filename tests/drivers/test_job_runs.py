"""One-off runs (a workflow's script or container breed, decision 0039) on the Kubernetes and ECS
drivers. Kubernetes: the Job manifest checked against the official schema (kubernetes-validate's)
and the restricted Pod Security Standard, then whole runs against the fake API server, which
serves batch/v1 Jobs as strictly as the real one (tests/fakes/kubernetes_jobs.py): created,
reported with their pod's exit code and log tail, failed at their deadline, deleted once
reported. ECS: on moto, which accepts RunTask and StopTask but runs nothing: the calls' shape.
The local driver runs for real in tests/workflows/test_script_runs.py."""
from __future__ import annotations

import pytest

from chalicelib.drivers import Guarded
from chalicelib.drivers.base import DriverError, JobSpec
from chalicelib.drivers.ecs import DEADLINE_TAG, JOB_STARTED_BY, EcsDriver
from chalicelib.drivers.kube_policy import NamespacePolicy
from chalicelib.drivers.kubernetes import JOB_TTL_AFTER_FINISHED, job_manifest
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


# -- Kubernetes Jobs against the fake API server ----------------------------------------------------

@pytest.fixture()
def kube(fake_kubernetes):
    from chalicelib.drivers.kube_policy import KubeRules
    from chalicelib.drivers.kubernetes import KubernetesDriver
    from tests.drivers.test_kubernetes import client_for

    fake_kubernetes.pause()  # the tests step the controllers themselves
    return KubernetesDriver(lambda: client_for(fake_kubernetes), KubeRules()), fake_kubernetes


def _job(fake, handle):
    kube, _, name = handle.partition("/")
    return fake.objects("jobs", kube).get(name)


def test_a_kubernetes_run_is_a_validated_job_reported_with_its_exit_code_and_log(kube):
    driver, fake = kube
    fake.jobs.outcome("workflow-report-*", exit_code=0, log=[f"line {i}" for i in range(30)])
    result = Guarded(driver).run_job("team-a", SPEC, 30.0)
    assert result.state == "started" and result.handle.startswith("vamp-team-a/workflow-report-")
    job = _job(fake, result.handle)
    assert job["spec"]["activeDeadlineSeconds"] == 30 and job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["annotations"]["vamp.io/workflow"] == "report"
    assert job["status"] == {}  # the Job controller has not seen it yet
    assert driver.finished_jobs("team-a") == []
    fake.advance()
    job = _job(fake, result.handle)
    assert job["status"]["active"] == 1 and "startTime" in job["status"]
    assert driver.finished_jobs("team-a") == []  # running
    fake.settle()
    [done] = driver.finished_jobs("team-a")
    assert done.handle == result.handle and done.workflow == "report" and done.succeeded
    assert done.exit_code == 0 and done.reason is None and done.duration is not None
    assert done.log == tuple(f"line {i}" for i in range(10, 30))  # the last 20 lines, as pods/log?tailLines
    status = _job(fake, result.handle)["status"]
    assert status["succeeded"] == 1 and "completionTime" in status
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    [pod] = fake.objects("pods", "vamp-team-a").values()
    assert schema_problem(pod) is None  # the fake's pod has the real shape
    assert ("GET", f"/api/v1/namespaces/vamp-team-a/pods/{pod['metadata']['name']}/log") in fake.requests
    driver.forget_job("team-a", result.handle)  # reported: deleted with its pod
    assert _job(fake, result.handle) is None
    fake.advance()  # the garbage collector
    assert fake.objects("pods", "vamp-team-a") == {}
    assert driver.finished_jobs("team-a") == []


def test_a_kubernetes_run_that_exits_non_zero_is_failed_with_its_code_and_log(kube):
    driver, fake = kube
    fake.jobs.outcome("workflow-report-*", exit_code=3, log=["oops"])
    handle = driver.run_job("team-a", SPEC, 30.0).handle
    fake.settle()
    [done] = driver.finished_jobs("team-a")
    assert (done.handle, done.exit_code, done.reason, done.log, done.succeeded) == (
        handle, 3, "exited with code 3", ("oops",), False)
    status = _job(fake, handle)["status"]
    assert status["failed"] == 1 and status["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert len(fake.objects("pods", "vamp-team-a")) == 1  # backoffLimit 0: never retried


def test_a_kubernetes_run_past_its_deadline_is_stopped_by_kubernetes_and_reported_as_a_timeout(kube):
    driver, fake = kube
    fake.jobs.outcome("workflow-report-*", exit_code=None)  # never ends on its own
    handle = driver.run_job("team-a", SPEC, 30.0).handle
    fake.settle()
    assert driver.finished_jobs("team-a") == [] and _job(fake, handle)["status"]["active"] == 1
    assert Guarded(driver).stop_overdue_jobs("team-a") == []  # Kubernetes enforces the deadline itself
    fake.jobs.skip(31)  # past activeDeadlineSeconds
    fake.settle()
    [done] = driver.finished_jobs("team-a")
    assert done.reason.startswith("timeout: stopped after 30 s") and "DeadlineExceeded" in done.reason
    assert done.exit_code is None and done.log == () and not done.succeeded  # its pod was killed
    assert fake.objects("pods", "vamp-team-a") == {}


def test_a_failed_job_create_is_a_failed_run_with_the_reason(kube):
    driver, fake = kube
    fake.fail(500, method="POST", path="/apis/batch/v1/namespaces/*/jobs", message="etcdserver: request timed out")
    result = Guarded(driver).run_job("team-a", SPEC, 30.0)
    assert result.state == "failed" and "500" in result.reason and "etcdserver: request timed out" in result.reason
    assert fake.objects("jobs", "vamp-team-a") == {}


def test_an_unreported_finished_job_is_removed_by_its_ttl(kube):
    driver, fake = kube
    handle = driver.run_job("team-a", SPEC, 30.0).handle
    fake.settle()
    assert _job(fake, handle) is not None
    fake.jobs.skip(JOB_TTL_AFTER_FINISHED + 1)
    fake.settle()
    assert _job(fake, handle) is None and fake.objects("pods", "vamp-team-a") == {}


def test_every_request_of_a_kubernetes_run_is_granted_by_the_cluster_role(kube):
    import yaml

    from tests.infra.test_agent_manifests import AGENT, rbac_of

    driver, fake = kube
    [role] = [d for d in yaml.safe_load_all((AGENT / "base" / "control-plane-rbac.yaml").read_text())
              if d["kind"] == "ClusterRole"]
    rules = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
             for v in rule["verbs"]}
    fake.requests.clear()
    handle = driver.run_job("team-a", SPEC, 30.0).handle
    fake.settle()
    driver.finished_jobs("team-a")
    driver.forget_job("team-a", handle)
    needed = {c for method, path in fake.requests for c in rbac_of(method, path)}
    assert {("batch", "jobs", "create"), ("batch", "jobs", "list"), ("batch", "jobs", "delete"),
            ("", "pods", "list"), ("", "pods/log", "get")} <= needed <= rules


# -- the fake's Jobs are as strict as the API server's ----------------------------------------------

def _batch(fake):
    from kubernetes import client

    from tests.drivers.test_kubernetes import client_for

    api = client_for(fake)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "jobs"}})
    return client.BatchV1Api(api), client.CoreV1Api(api)


def _body(**spec):
    pod = {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}
    pod.update(spec.pop("pod", {}))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": spec.pop("name", "j")},
            "spec": {"template": {"spec": pod}, **spec}}


@pytest.mark.parametrize("body, code, words", [
    (_body(pod={"restartPolicy": "Always"}), 422, "restartPolicy: Unsupported value"),
    (_body(pod={"restartPolicy": None}), 422, 'restartPolicy: Unsupported value: \\"Always\\"'),
    (_body(name="j" * 64), 422, "must be no more than 63 characters"),
    (_body(activeDeadlineSeconds=0), 422, "activeDeadlineSeconds"),
    (_body(backoffLimit=-1), 422, "backoffLimit"),
    (_body(selector={"matchLabels": {"a": "b"}}), 422, "auto-generated"),
    (_body(retries=1), 400, "strict decoding error"),
    (_body(pod={"containers": [{"name": "c", "image": "busybox", "env": [{"name": "1X", "value": "v"}]}]}), 422,
     "valid environment variable name"),
], ids=["Always", "unset restartPolicy", "long name", "deadline 0", "backoff -1", "selector", "unknown field",
        "env name"])
def test_the_fake_refuses_jobs_the_api_server_refuses(fake_kubernetes, body, code, words):
    import json

    _batch(fake_kubernetes)
    # raw, as any client may send it (the kubernetes client itself refuses unknown fields)
    got, reply = fake_kubernetes.handle("POST", "/apis/batch/v1/namespaces/jobs/jobs", body)
    assert got == code and words in json.dumps(reply)
    assert fake_kubernetes.objects("jobs", "jobs") == {}
    assert fake_kubernetes.handle("POST", "/apis/batch/v1/namespaces/jobs/jobs", _body())[0] == 201


def test_the_fake_orphans_a_jobs_pods_unless_told_to_propagate(fake_kubernetes):
    from kubernetes.client.exceptions import ApiException

    fake_kubernetes.pause()
    batch, core = _batch(fake_kubernetes)
    fake_kubernetes.jobs.outcome("*", exit_code=None)
    for name in ("orphaned", "background", "foreground"):
        batch.create_namespaced_job("jobs", _body(name=name))
    fake_kubernetes.advance(2)
    pods = core.list_namespaced_pod("jobs", label_selector="batch.kubernetes.io/job-name in (orphaned,background)")
    assert sorted(p.metadata.labels["job-name"] for p in pods.items) == ["background", "orphaned"]
    batch.delete_namespaced_job("orphaned", "jobs")  # the Job API's default: the pods stay
    batch.delete_namespaced_job("background", "jobs", propagation_policy="Background")
    batch.delete_namespaced_job("foreground", "jobs", propagation_policy="Foreground")
    assert batch.read_namespaced_job("foreground", "jobs").metadata.deletion_timestamp is not None
    fake_kubernetes.advance()
    assert [p.metadata.labels["job-name"] for p in core.list_namespaced_pod("jobs").items] == ["orphaned"]
    assert batch.list_namespaced_job("jobs").items == []
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod("jobs", label_selector="job-name in orphaned")
    assert raised.value.status == 400  # a selector it cannot parse is refused, never ignored
    with pytest.raises(ApiException) as raised:
        batch.delete_namespaced_job("gone", "jobs")
    assert raised.value.status == 404


def test_the_fake_serves_a_waiting_pods_log_as_the_kubelet_refuses_it(fake_kubernetes):
    from kubernetes.client.exceptions import ApiException

    fake_kubernetes.pause()
    batch, core = _batch(fake_kubernetes)
    fake_kubernetes.jobs.outcome("*", exit_code=None, log=["a", "b", "c"])
    batch.create_namespaced_job("jobs", _body())
    fake_kubernetes.advance()
    [pod] = core.list_namespaced_pod("jobs", label_selector="job-name=j").items
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log(pod.metadata.name, "jobs", container="c")
    assert raised.value.status == 400 and "waiting to start: ContainerCreating" in raised.value.body
    fake_kubernetes.advance()
    assert core.read_namespaced_pod_log(pod.metadata.name, "jobs", container="c", tail_lines=2) == "b\nc\n"


def test_a_job_whose_pod_pod_security_refuses_never_starts_and_fails_at_its_deadline(fake_kubernetes):
    fake_kubernetes.pause()
    batch, core = _batch(fake_kubernetes)
    ns = core.read_namespace("jobs")
    ns.metadata.labels = {**(ns.metadata.labels or {}), "pod-security.kubernetes.io/enforce": "restricted"}
    core.replace_namespace("jobs", ns)
    batch.create_namespaced_job("jobs", _body(activeDeadlineSeconds=5))  # no securityContext: refused
    fake_kubernetes.settle()
    assert core.list_namespaced_pod("jobs").items == []
    fake_kubernetes.jobs.skip(6)
    fake_kubernetes.settle()
    [condition] = [c for c in batch.read_namespaced_job("j", "jobs").status.conditions if c.type == "Failed"]
    assert condition.reason == "DeadlineExceeded"


# -- ECS: the run's log tail from CloudWatch Logs ---------------------------------------------------

def test_ecs_reports_a_stopped_runs_last_log_lines_from_its_awslogs_stream(aws):
    import time
    import uuid

    import boto3

    client, cluster, subnet, group = moto_ecs_cluster(aws)
    logs = boto3.client("logs", region_name="us-east-1", endpoint_url=aws)
    log_group = f"/vamp/test-{uuid.uuid4().hex[:6]}/services"
    logs.create_log_group(logGroupName=log_group)
    driver = EcsDriver(cluster, [subnet], [group], client=client, execution_role_arn=(
        "arn:aws:iam::123456789012:role/vamp-EcsTaskExecutionRole"), log_group=log_group, logs_client=logs)
    handle = driver.run_job("team-a", SPEC, 30.0).handle
    silent = driver.run_job("team-a", SPEC, 30.0).handle  # stopped before it wrote anything: no stream
    [task] = client.describe_tasks(cluster=cluster, tasks=[handle])["tasks"]
    definition = client.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    options = definition["containerDefinitions"][0]["logConfiguration"]["options"]
    # what awslogs writes: <prefix>/<container>/<task id>
    stream = f"{options['awslogs-stream-prefix']}/service/{handle.rsplit('/', 1)[-1]}"
    logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    now = int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days
    put = logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=[
        {"timestamp": now - 30 + i, "message": f"line {i}"} for i in range(30)])
    assert not put.get("rejectedLogEventsInfo"), put
    driver.stop_overdue_jobs("team-a", now=10**10)
    found = {job.handle: job for job in driver.finished_jobs("team-a")}
    assert found[handle].log == tuple(f"line {i}" for i in range(10, 30))
    assert found[silent].log == ()


# -- `arguments` (Vamp's docker run options) on each driver -------------------------------------------

ARGUMENTS = (("user", "1000:2000"), ("workdir", "/work"), ("read-only", "true"), ("cap-drop", "NET_RAW"),
             ("stop-timeout", "5"), ("label", "team=a"))


def test_kubernetes_applies_the_arguments_it_has_to_the_validated_job(kube):
    import dataclasses

    driver, fake = kube
    spec = dataclasses.replace(SPEC, arguments=(*ARGUMENTS, ("security-opt", "seccomp=profiles/audit.json")))
    handle = driver.run_job("team-a", spec, 30.0).handle
    pod = _job(fake, handle)["spec"]["template"]
    [container] = pod["spec"]["containers"]
    context = container["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["readOnlyRootFilesystem"]) == (1000, 2000, True)
    assert context["capabilities"]["drop"] == ["ALL", "NET_RAW"]  # hardened: every capability stays dropped
    assert context["seccompProfile"] == {"type": "Localhost", "localhostProfile": "profiles/audit.json"}
    assert container["workingDir"] == "/work" and pod["spec"]["terminationGracePeriodSeconds"] == 5
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod_security_violations(pod["spec"], "restricted") == []


@pytest.mark.parametrize("argument, words", [
    (("privileged", "true"), "a privileged container is root on the node"),
    (("cap-add", "SYS_ADMIN"), "only NET_BIND_SERVICE may be added"),
    (("user", "0"), "0 is root"),
    (("init", "true"), "no init process option"),
    (("ulimit", "nofile=1024"), "no ulimits"),
    (("user", "nobody"), "numeric uid"),
    (("volume", "/:/host"), "no host paths"),
], ids=lambda v: v[0] if isinstance(v, tuple) else "")
def test_kubernetes_refuses_the_arguments_it_cannot_apply_and_creates_nothing(kube, argument, words):
    import dataclasses

    driver, fake = kube
    result = Guarded(driver).run_job("team-a", dataclasses.replace(SPEC, arguments=(argument,)), 30.0)
    assert result.state == "failed" and f"argument {argument[0]!r}" in result.reason and words in result.reason
    assert fake.objects("jobs", "vamp-team-a") == {}


def test_kubernetes_applies_privileged_where_the_namespace_policy_allows_it(kube):
    import dataclasses

    from chalicelib.drivers.kube_policy import NamespacePolicy

    spec = dataclasses.replace(SPEC, arguments=(("privileged", "true"),))
    job = job_manifest("n", spec, 30.0, NamespacePolicy("privileged", allow=frozenset({"*"})), suffix="1")
    assert schema_problem(job) is None
    context = job["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert context["privileged"] is True and context["allowPrivilegeEscalation"] is True


def test_ecs_applies_the_arguments_it_has_to_the_task_definition(ecs):
    import dataclasses

    driver, client, cluster = ecs
    spec = dataclasses.replace(SPEC, arguments=(*ARGUMENTS, ("init", "true"), ("ulimit", "nofile=1024:4096")))
    handle = driver.run_job("team-a", spec, 30.0).handle
    [task] = client.describe_tasks(cluster=cluster, tasks=[handle])["tasks"]
    [container] = client.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"][
        "containerDefinitions"]
    assert (container["user"], container["workingDirectory"], container["readonlyRootFilesystem"]) == (
        "1000:2000", "/work", True)
    assert container["linuxParameters"] == {"initProcessEnabled": True, "capabilities": {"drop": ["NET_RAW"]}}
    assert container["ulimits"] == [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]
    assert container["stopTimeout"] == 5 and container["dockerLabels"]["team"] == "a"


@pytest.mark.parametrize("argument, words", [
    (("privileged", "true"), "Fargate runs no privileged containers"),
    (("cap-add", "NET_ADMIN"), "Fargate adds only SYS_PTRACE"),
    (("security-opt", "no-new-privileges"), "Fargate takes no docker security options"),
    (("stop-timeout", "300"), "0 to 120"),
    (("hostname", "box"), "no container setting"),
], ids=lambda v: v[0] if isinstance(v, tuple) else "")
def test_ecs_on_fargate_refuses_the_arguments_it_cannot_apply_as_a_failed_run(ecs, argument, words):
    import dataclasses

    driver, client, cluster = ecs
    result = Guarded(driver).run_job("team-a", dataclasses.replace(SPEC, arguments=(argument,)), 30.0)
    assert result.state == "failed" and f"argument {argument[0]!r}" in result.reason and words in result.reason
    assert client.list_tasks(cluster=cluster)["taskArns"] == []  # nothing ran


def test_ecs_on_ec2_takes_privileged_and_docker_security_options():
    from chalicelib.drivers.job_arguments import for_ecs

    assert for_ecs([("privileged", "true"), ("security-opt", "apparmor=docker-default"),
                    ("security-opt", "no-new-privileges")], fargate=False) == {
        "privileged": True, "dockerSecurityOptions": ["apparmor:docker-default", "no-new-privileges"]}
