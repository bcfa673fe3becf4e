"""Script and container breeds run on the namespace's driver (decision 0039): the local driver
for real (a process: exit code, log tail, the timeout stopping its whole group), Vamp's workflow
environment, and the run's token, which is bound to its workflow (role `workflow`, decision 0044:
tests/workflows/test_run_tokens.py tries every forbidden write) and lives only while the run lasts."""
from __future__ import annotations

import json
import os
import time

import pytest

from chalicelib import drivers
from chalicelib.drivers.base import JobResult
from chalicelib.drivers.processes import running, start_time
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.store.tokens import DynamoDBTokenStore
from chalicelib.workflows import runs, script_runs


def _query(*tags):
    return event_store().query("default", EventQuery(tags=list(tags), per_page=100)).items


def _breed(api, name, command, **env):
    body = {"name": name, "deployable": {"type": "command", "definition": command}}
    if env:
        body["environment_variables"] = env
    r = api.post("/api/v1/breeds", body)
    assert r.status_code == 201, r.body


def _workflow(api, name, breed, schedule=None, **env):
    body = {"name": name, "breed": breed, "schedule": schedule or {"time": {"period": "PT1M"}}}
    if env:
        body["environment_variables"] = env
    r = api.post("/api/v1/workflows", body)
    assert r.status_code == 202, r.body


def test_a_command_breed_runs_as_a_process_its_exit_code_and_log_reported(api):
    _breed(api, "job", "echo ns=$VAMP_NAMESPACE; echo line2 >&2; exit 3")
    _workflow(api, "j", "job")
    outcome = runs.run(DynamoDBArtifactStore(), "default", "j")
    [failed] = _query("workflows:j", "failed")
    assert failed["value"] == outcome
    assert outcome["exit_code"] == 3 and outcome["error"] == "exited with code 3"
    assert outcome["log"] == ["ns=default", "line2"]
    assert _query("workflows:j", "finished") == []


def test_a_run_past_its_timeout_is_stopped_with_its_children_and_reported(api, tmp_path):
    pids = tmp_path / "pids"
    # the shell's child lives in its group: the timeout stops the group, not the shell alone
    _breed(api, "slow", f"sleep 30 & echo $! > {pids}; echo $$ >> {pids}; wait",
           VAMP_WORKFLOW_EXECUTION_TIMEOUT="5")
    _workflow(api, "s", "slow", VAMP_WORKFLOW_EXECUTION_TIMEOUT="1")
    outcome = runs.run(DynamoDBArtifactStore(), "default", "s")
    [failed] = _query("workflows:s", "failed")
    assert "timeout" in failed["value"]["error"] and "1 s" in failed["value"]["error"]
    assert failed["value"]["duration"] < 30  # stopped, not waited for
    for pid in map(int, pids.read_text().split()):
        assert not running(pid, start_time(pid)), f"{pid} still runs"
    assert outcome == failed["value"]


@pytest.fixture()
def _located(aws):
    from chalicelib.settings import settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAMP_API_URL", "http://127.0.0.1:9999")
        patch.setenv("VAMP_ETCD_ENDPOINT", "127.0.0.1:2379")  # never reached: only handed to the run
        settings.cache_clear()
        yield
    settings.cache_clear()


def test_the_run_gets_vamps_workflow_environment(api, _located):
    printed = "; echo ".join(f"{v}=${v}" for v in (
        "VAMP_URL", "VAMP_NAMESPACE", "VAMP_WORKFLOW_EXECUTION_PERIOD", "VAMP_WORKFLOW_EXECUTION_TIMEOUT",
        "VAMP_KEY_VALUE_STORE_CONNECTION", "VAMP_KEY_VALUE_STORE_PATH", "COLOUR"))
    _breed(api, "env", f'echo {printed}; echo "$VAMP_API_TOKEN" | cut -c1-5; echo "$VAMP_WORKFLOW_EVENT"',
           COLOUR="red")
    _workflow(api, "e", "env", {"event": ["paint"]}, COLOUR="blue")
    r = api.post("/api/v1/events", {"tags": ["paint"], "value": {"wall": 1}})
    assert r.status_code == 201, r.body
    [finished] = _query("workflows:e", "finished")
    *variables, token_prefix, event = finished["value"]["log"]
    assert variables == ["VAMP_URL=http://127.0.0.1:9999", "VAMP_NAMESPACE=default", "VAMP_WORKFLOW_EXECUTION_PERIOD=0",
                         "VAMP_WORKFLOW_EXECUTION_TIMEOUT=60", "VAMP_KEY_VALUE_STORE_CONNECTION=127.0.0.1:2379",
                         "VAMP_KEY_VALUE_STORE_PATH=/vamp/default", "COLOUR=blue"]
    assert token_prefix == "vamp_"
    event = json.loads(event)
    assert event["id"] == r.json["id"] and event["value"] == {"wall": 1} and "paint" in event["tags"]


def test_a_time_schedules_period_is_the_execution_period():
    assert script_runs.period_of({"schedule": {"time": {"period": "PT5M"}}}) == 300
    assert script_runs.period_of({"schedule": {"event": ["x"]}}) == 0


def test_the_triggering_event_is_bounded():
    small = {"id": "1", "tags": ["a"], "value": "v", "origin": ["w"]}
    assert json.loads(script_runs.event_json(small)) == {"id": "1", "tags": ["a"], "value": "v"}
    big = {"id": "1", "tags": ["a"], "value": "v" * 10_000}
    text = script_runs.event_json(big)
    assert len(text) <= script_runs.MAX_EVENT_CHARS
    assert json.loads(text) == {"id": "1", "tags": ["a"], "truncated": True}


def test_a_bad_timeout_fails_the_run_naming_the_variable(api):
    _breed(api, "t", "true", VAMP_WORKFLOW_EXECUTION_TIMEOUT="60")
    _workflow(api, "t", "t", VAMP_WORKFLOW_EXECUTION_TIMEOUT="forever")
    outcome = runs.run(DynamoDBArtifactStore(), "default", "t")
    assert "VAMP_WORKFLOW_EXECUTION_TIMEOUT" in outcome["error"]


class _Calling:
    """A driver whose run calls the API with the run's token, as a script would."""

    name = "calling"

    def __init__(self, api):
        self.api, self.answers, self.token = api, {}, None

    def run_job(self, namespace, spec, timeout):
        self.token = token = spec.env["VAMP_API_TOKEN"]
        api = self.api
        gateway = {"name": "wg", "port": "9077/http", "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}}
        self.answers = {
            "read": api.get("/api/v1/deployments", token=token).status_code,
            "create gateway": api.post("/api/v1/gateways", gateway, token=token).status_code,
            "change gateway": api.put("/api/v1/gateways/wg", gateway, token=token).status_code,
            "write its breed": api.put("/api/v1/breeds/caller", {"name": "caller", "deployable": {
                "type": "command", "definition": "id"}}, token=token).status_code,
            "write a workflow": api.post("/api/v1/workflows", {"name": "c2", "breed": "caller", "schedule": {
                "time": {"period": "PT1M"}}}, token=token).status_code,
            "publish": api.post("/api/v1/events", {"tags": ["done"], "value": 1}, token=token).status_code,
            "other namespace": api.get("/other/api/v1/deployments", token=token).status_code,
            "other namespace write": api.post("/other/api/v1/events", {"tags": ["x"], "value": 1},
                                              token=token).status_code,
            "mint a token": api.post("/api/v1/tokens", {"name": "more", "role": "reader"}, token=token).status_code,
            "list tokens": api.get("/api/v1/tokens", token=token).status_code,
            "telemetry": api.post("/api/v1/events", {"tags": ["gateways:wg", "metrics:rate"], "type": "metrics",
                                                     "value": 1}, token=token).status_code,
        }
        return JobResult("succeeded", 0, ("called",))


def test_the_runs_token_acts_in_its_namespace_only_and_dies_with_the_run(api, monkeypatch):
    calling = _Calling(api)
    monkeypatch.setattr(script_runs, "driver_for", lambda namespace: drivers.Guarded(calling))
    _breed(api, "caller", "true")
    _workflow(api, "c", "caller")
    assert api.post("/api/v1/gateways", {"name": "wg", "port": "9077/http", "routes": {
        "[127.0.0.1:8081]": {"weight": "100%"}}}).status_code == 202
    outcome = runs.run(DynamoDBArtifactStore(), "default", "c")
    assert outcome["exit_code"] == 0
    assert calling.answers == {"read": 200, "create gateway": 403, "change gateway": 202, "write its breed": 403,
                               "write a workflow": 403, "publish": 201, "other namespace": 403,
                               "other namespace write": 403, "mint a token": 403, "list tokens": 403,
                               "telemetry": 403}
    assert DynamoDBTokenStore().authenticate(calling.token) is None  # revoked at the run's end
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("workflow@")]
    [published] = _query("done")
    assert published["posted_by"]["name"].startswith("workflow@default.c.")
    assert published["posted_by"]["workflow"] == "c" and published["posted_by"]["role"] == "workflow"


def test_the_runs_token_expires_with_the_run(aws):
    tokens = DynamoDBTokenStore()
    token, entry = tokens.create("workflow@x", role="operator", namespaces=["default"],
                                 expires_at=int(time.time()) - 1)
    assert entry.expires_at is not None and tokens.authenticate(token) is None
    live, _ = tokens.create("workflow@y", role="operator", namespaces=["default"], expires_at=int(time.time()) + 60)
    assert tokens.authenticate(live).expires_at is not None
    with pytest.raises(Exception, match="admin"):
        tokens.create("workflow@z", role="admin", namespaces=["default"], expires_at=int(time.time()) + 60)


def test_a_container_breed_on_the_local_driver_fails_the_run_with_the_reason(api):
    assert api.post("/api/v1/breeds", {"name": "img", "deployable": "busybox"}).status_code == 201
    _workflow(api, "i", "img")
    outcome = runs.run(DynamoDBArtifactStore(), "default", "i")
    assert "`command` breeds only" in outcome["error"]
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("workflow@")]  # revoked anyway


def test_no_job_is_left_in_the_run_directory(api):
    from chalicelib.drivers.base import object_name
    from chalicelib.drivers.local import run_dir

    _breed(api, "quick", "true")
    _workflow(api, "q", "quick")
    assert runs.run(DynamoDBArtifactStore(), "default", "q")["exit_code"] == 0
    # this run's job only: other xdist workers' runs share the directory
    mine = f"job-default-{object_name('q')}-*"
    assert not [p for p in run_dir().glob(mine)] if run_dir().is_dir() else True
    assert os.path.isdir(run_dir().parent / "jobs")


@pytest.fixture()
def ecs_namespace(aws):
    """Namespace team-a on the ECS driver (moto: RunTask accepted, nothing runs)."""
    from chalicelib.settings import settings
    from tests.drivers.helpers import moto_ecs_cluster

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


def test_a_container_run_on_ecs_is_started_not_awaited_and_settled_by_a_later_run(api, ecs_namespace):
    client, cluster = ecs_namespace
    r = api.post("/team-a/api/v1/breeds", {"name": "img", "deployable": "busybox:1.36",
                                           "environment_variables": {"VAMP_WORKFLOW_EXECUTION_TIMEOUT": "1"}})
    assert r.status_code == 201, r.body
    r = api.post("/team-a/api/v1/workflows", {"name": "w", "breed": "img", "schedule": {"time": {"period": "PT1M"}}})
    assert r.status_code == 202, r.body
    first = runs.run(DynamoDBArtifactStore(), "team-a", "w")
    assert first["running"].startswith("arn:aws:ecs:")  # the Lambda returns; the task runs on
    [task] = client.describe_tasks(cluster=cluster, tasks=[first["running"]])["tasks"]
    assert task["desiredStatus"] == "RUNNING"
    [token] = [t for t in DynamoDBTokenStore().list() if t.name.startswith("workflow@team-a.w.")]
    assert token.expires_at is not None and token.namespaces == ("team-a",)  # expires; not revoked yet
    assert token.role == "workflow" and token.workflow == "w"
    time.sleep(2.1)  # past the run's 1 s deadline (ECS has no timeout: the next run stops it)
    second = runs.run(DynamoDBArtifactStore(), "team-a", "w")  # stops and reports the first
    assert second["running"] != first["running"]
    failed = event_store().query("team-a", EventQuery(tags=["workflows:w", "failed"], per_page=10)).items
    assert [e["value"]["handle"] for e in failed] == [first["running"]]
    assert "timeout" in failed[0]["value"]["error"]
    runs.run(DynamoDBArtifactStore(), "team-a", "w")  # the first is reported once only
    failed = event_store().query("team-a", EventQuery(tags=["workflows:w", "failed"], per_page=10)).items
    assert [e["value"]["handle"] for e in failed].count(first["running"]) == 1


def test_on_aws_a_one_shot_schedule_settles_the_run_at_its_deadline(api, aws, ecs_namespace):
    """Nothing else needs to run in the namespace: EventBridge Scheduler invokes workflow_run with
    `settle` after the deadline (moto stores the schedule and never fires it: the test does)."""
    import uuid

    import boto3

    from chalicelib import aws as product_aws
    from chalicelib.settings import settings

    client, cluster = ecs_namespace
    scheduler = boto3.client("scheduler", region_name="us-east-1", endpoint_url=aws)
    group = f"vamp-test-{uuid.uuid4().hex[:8]}-workflows"
    scheduler.create_schedule_group(Name=group)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAMP_WORKFLOW_SCHEDULE_GROUP", group)
        patch.setenv("VAMP_WORKFLOW_RUN_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:vamp-dev-workflow_run")
        patch.setenv("VAMP_WORKFLOW_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/vamp-dev-WorkflowSchedulerRole")
        settings.cache_clear()
        product_aws.reset_clients()
        r = api.post("/team-a/api/v1/breeds", {"name": "img", "deployable": "busybox:1.36",
                                               "environment_variables": {"VAMP_WORKFLOW_EXECUTION_TIMEOUT": "1"}})
        assert r.status_code == 201, r.body
        body = {"name": "w", "breed": "img", "schedule": {"time": {"period": "PT1H"}}}
        assert api.post("/team-a/api/v1/workflows", body).status_code == 202
        handle = runs.run(DynamoDBArtifactStore(), "team-a", "w")["running"]
        names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
        [settling] = [n for n in names if n.startswith("settle-")]
        schedule = scheduler.get_schedule(Name=settling, GroupName=group)
        assert schedule["ActionAfterCompletion"] == "DELETE" and schedule["ScheduleExpression"].startswith("at(")
        event = json.loads(schedule["Target"]["Input"])
        assert event == {"namespace": "team-a", "workflow": "w", "settle": handle}
        time.sleep(2.1)  # past the run's 1 s deadline, as the schedule fires 60 s after it
        assert runs.handle(event) == {"settled": 1}
        [failed] = event_store().query("team-a", EventQuery(tags=["workflows:w", "failed"], per_page=10)).items
        assert failed["value"]["handle"] == handle and "timeout" in failed["value"]["error"]
        assert client.describe_tasks(cluster=cluster, tasks=[handle])["tasks"][0]["desiredStatus"] == "STOPPED"
        scheduler.delete_schedule(Name=settling, GroupName=group)
        api.delete("/team-a/api/v1/workflows/w")
    settings.cache_clear()
    product_aws.reset_clients()


@pytest.fixture()
def kube_namespace(aws, fake_kubernetes, tmp_path):
    """Namespace team-k on the Kubernetes driver: the fake API server, by kubeconfig."""
    import yaml

    from chalicelib.settings import settings

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake_kubernetes.url}}],
        "users": [{"name": "vamp", "user": {"token": fake_kubernetes.token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "vamp"}}]}))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        patch.setenv("KUBECONFIG", str(kubeconfig))
        patch.setenv("VAMP_NAMESPACE_DRIVERS", "team-k=kubernetes")
        settings.cache_clear()
        drivers.reset()
        yield fake_kubernetes
    settings.cache_clear()
    drivers.reset()


def _kube_workflow(api, name, timeout="30"):
    r = api.post("/team-k/api/v1/breeds", {"name": f"{name}-img", "deployable": "busybox:1.36",
                                           "environment_variables": {"VAMP_WORKFLOW_EXECUTION_TIMEOUT": timeout}})
    assert r.status_code == 201, r.body
    r = api.post("/team-k/api/v1/workflows", {"name": name, "breed": f"{name}-img",
                                              "schedule": {"time": {"period": "PT1M"}}})
    assert r.status_code == 202, r.body


def _events(namespace, *tags):
    return event_store().query(namespace, EventQuery(tags=list(tags), per_page=100)).items


def test_a_container_run_on_kubernetes_is_a_job_reported_finished_with_its_exit_code_and_log(api, kube_namespace):
    fake = kube_namespace
    fake.jobs.outcome("workflow-k-*", exit_code=0, log=["hello from the job"])
    _kube_workflow(api, "k")
    first = runs.run(DynamoDBArtifactStore(), "team-k", "k")
    kube, _, job = first["running"].partition("/")
    assert kube == "vamp-team-k"
    created = fake.objects("jobs", kube)[job]
    env = {e["name"]: e["value"] for e in created["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["VAMP_NAMESPACE"] == "team-k" and env["VAMP_API_TOKEN"].startswith("vamp_")
    assert created["spec"]["activeDeadlineSeconds"] == 30
    fake.settle()  # the Job ran
    assert script_runs.settle("team-k", event_store(), event_store().publish) == 1
    [finished] = _events("team-k", "workflows:k", "finished")
    assert finished["value"]["handle"] == first["running"] and finished["value"]["exit_code"] == 0
    assert finished["value"]["log"] == ["hello from the job"]
    assert fake.objects("jobs", kube) == {}  # reported: removed
    assert script_runs.settle("team-k", event_store(), event_store().publish) == 0  # once


def test_a_kubernetes_run_past_its_deadline_is_reported_failed_with_the_timeout(api, kube_namespace):
    fake = kube_namespace
    fake.jobs.outcome("workflow-slow-*", exit_code=None)
    _kube_workflow(api, "slow", timeout="5")
    handle = runs.run(DynamoDBArtifactStore(), "team-k", "slow")["running"]
    fake.settle()
    assert script_runs.settle("team-k", event_store(), event_store().publish) == 0  # still running
    fake.jobs.skip(6)
    fake.settle()
    # the next run of the namespace settles it (on AWS, also the one-shot schedule at its deadline)
    runs.run(DynamoDBArtifactStore(), "team-k", "slow")
    [failed] = _events("team-k", "workflows:slow", "failed")
    assert failed["value"]["handle"] == handle
    assert failed["value"]["error"].startswith("timeout: stopped after 5 s") and "DeadlineExceeded" in \
        failed["value"]["error"]


def test_a_failed_job_create_is_a_failed_run_with_the_reason_and_no_token_left(api, kube_namespace):
    fake = kube_namespace
    fake.fail(403, method="POST", path="/apis/batch/v1/namespaces/*/jobs", message='jobs.batch is forbidden: '
              'User "vamp" cannot create resource "jobs" in API group "batch"')
    _kube_workflow(api, "denied")
    outcome = runs.run(DynamoDBArtifactStore(), "team-k", "denied")
    [failed] = _events("team-k", "workflows:denied", "failed")
    assert failed["value"] == outcome
    assert "kubernetes API 403" in outcome["error"] and 'cannot create resource "jobs"' in outcome["error"]
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("workflow@team-k.denied.")]


# -- `arguments` (Vamp's docker run options): applied where the driver can, else refused ---------------

def test_on_the_local_driver_a_workdir_argument_is_the_runs_directory_and_others_are_a_400(api, tmp_path):
    _breed(api, "where", "pwd")
    r = api.post("/api/v1/workflows", {"name": "p", "breed": "where", "schedule": {"time": {"period": "PT1M"}},
                                       "arguments": [{"workdir": str(tmp_path)}, {"privileged": "true"}]})
    assert r.status_code == 400, r.body
    [error] = r.json["errors"]
    assert error["path"] == "arguments[1].privileged" and "local driver" in error["reason"]
    assert api.get("/api/v1/workflows/p").status_code == 404  # nothing written
    r = api.post("/api/v1/workflows", {"name": "p", "breed": "where", "schedule": {"time": {"period": "PT1M"}},
                                       "arguments": [{"workdir": str(tmp_path)}]})
    assert r.status_code == 202, r.body
    outcome = runs.run(DynamoDBArtifactStore(), "default", "p")
    assert outcome["exit_code"] == 0 and outcome["log"] == [str(tmp_path)]


def test_a_built_in_breed_refuses_arguments(api):
    r = api.post("/api/v1/workflows", {"name": "h", "breed": "health", "schedule": {"time": {"period": "PT1M"}},
                                       "arguments": [{"privileged": "true"}]})
    assert r.status_code == 400, r.body
    [error] = r.json["errors"]
    assert error["path"] == "arguments[0].privileged" and "built-in breed 'health'" in error["reason"]


def test_arguments_the_namespaces_driver_cannot_apply_are_a_400_naming_them(api, kube_namespace):
    r = api.post("/team-k/api/v1/breeds", {"name": "root", "deployable": "busybox:1.36",
                                           "arguments": [{"privileged": "true"}]})
    assert r.status_code == 201, r.body  # a breed is not run by itself: its workflow is checked
    r = api.post("/team-k/api/v1/workflows", {"name": "r", "breed": "root", "schedule": {"time": {"period": "PT1M"}},
                                              "arguments": [{"workdir": "/tmp"}, {"init": "true"}]})
    assert r.status_code == 400, r.body
    assert {e["path"]: e["reason"] for e in r.json["errors"]} == {"breed": r.json["errors"][0]["reason"]}
    assert "argument 'privileged'" in r.json["errors"][0]["reason"] and "root on the node" in r.json["errors"][0]["reason"]
    r = api.post("/team-k/api/v1/workflows", {"name": "r", "breed": {"name": "plain", "deployable": "busybox:1.36"},
                                              "schedule": {"time": {"period": "PT1M"}},
                                              "arguments": [{"workdir": "/tmp"}, {"init": "true"}]})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "arguments[1].init", r.body
    assert "kubernetes driver" in r.json["errors"][0]["reason"]
    assert api.get("/team-k/api/v1/workflows/r").status_code == 404
