"""Daemon workflows on Kubernetes (decision 0043): a Deployment of one replica, restartPolicy
Always, Recreate, hardened, written to the strict fake API server (tests/fakes/kubernetes_server.py,
which refuses what apps/v1 refuses), never seen by the deployments' synchronisation; every
request it makes is one the control plane's ClusterRole grants."""
from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chalicelib.drivers import DriverError
from chalicelib.drivers.base import JobSpec
from chalicelib.drivers.kube_policy import KubeRules
from chalicelib.drivers.kubernetes import KubernetesDriver, daemon_manifest, daemon_object_name
from tests.drivers.helpers import image_spec
from tests.drivers.test_kubernetes import client_for
from tests.drivers.test_trust_boundaries import forget_settings, kube  # noqa: F401 (fixtures)


@pytest.fixture()
def k8s(fake_kubernetes):
    fake_kubernetes.pause()  # each test steps the deployment controller itself
    return KubernetesDriver(lambda: client_for(fake_kubernetes), KubeRules()), fake_kubernetes


def _spec(token="vamp_secret", label="daemon@ns.watcher.1.a") -> JobSpec:
    return JobSpec(name="watcher", deployable_type="container/docker", definition="busybox:1.36",
                   env={"VAMP_API_TOKEN": token, "PRICE": "$5"}, labels={"workflow": "watcher", "token": label})


def test_a_daemon_is_a_deployment_of_one_replica_restarted_by_kubernetes(k8s):
    driver, fake = k8s
    handle = driver.run_daemon("ns", _spec())
    name = daemon_object_name("watcher")
    assert handle == f"vamp-ns/{name}"
    dep = fake.objects("deployments", "vamp-ns")[name]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Always" and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"name": "PRICE", "value": "$$5"} in container["env"]  # literal, as every driver's
    assert dep["metadata"]["annotations"] == {"vamp.io/daemon-of": "watcher", "vamp.io/token-name": "daemon@ns.watcher.1.a"}
    assert fake.objects("namespaces")["vamp-ns"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    [status] = driver.daemons("ns").values()
    assert status.state == "starting" and status.token_name == "daemon@ns.watcher.1.a"
    fake.settle()
    assert driver.daemons("ns")["watcher"].state == "running"
    assert driver.daemons("other") == {}


def test_run_again_replaces_it_and_stop_removes_it(k8s):
    driver, fake = k8s
    driver.run_daemon("ns", _spec())
    fake.settle()
    driver.run_daemon("ns", _spec(token="vamp_fresh", label="daemon@ns.watcher.1.b"))
    (dep,) = fake.objects("deployments", "vamp-ns").values()
    assert {"name": "VAMP_API_TOKEN", "value": "vamp_fresh"} in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert driver.daemons("ns")["watcher"].state == "starting"  # the new template rolls
    fake.settle()
    assert driver.daemons("ns")["watcher"].token_name == "daemon@ns.watcher.1.b"
    driver.stop_daemon("ns", "watcher")
    assert fake.objects("deployments", "vamp-ns") == {} and driver.daemons("ns") == {}
    driver.stop_daemon("ns", "watcher")  # nothing there: not an error


def test_deployments_and_daemons_never_see_each_other(k8s):
    driver, _ = k8s
    spec = image_spec()
    driver.deploy("ns", spec)
    driver.run_daemon("ns", _spec())
    assert list(driver.running("ns")) == [spec.key]  # synchronisation would undeploy what it lists
    assert list(driver.daemons("ns")) == ["watcher"]


def test_refusals_send_nothing(k8s):
    driver, fake = k8s
    fake.requests.clear()
    with pytest.raises(DriverError, match="container images"):
        driver.run_daemon("ns", JobSpec(name="x", deployable_type="command", definition="sleep 1"))
    assert fake.requests == []


def test_the_fake_refuses_what_a_deployment_may_not_be(fake_kubernetes):
    """As apps/v1 validation: a Deployment's pods restart Always, Recreate takes no rollingUpdate."""
    core, apps = client.CoreV1Api(client_for(fake_kubernetes)), client.AppsV1Api(client_for(fake_kubernetes))
    core.create_namespace({"metadata": {"name": "vamp-x"}})
    body = daemon_manifest("vamp-x", _spec())
    never = {**body, "spec": {**body["spec"], "template": {**body["spec"]["template"], "spec": {
        **body["spec"]["template"]["spec"], "restartPolicy": "Never"}}}}
    with pytest.raises(ApiException) as refused:
        apps.create_namespaced_deployment("vamp-x", never)
    assert refused.value.status == 422 and "restartPolicy" in refused.value.body
    both = {**body, "spec": {**body["spec"], "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(ApiException) as refused:
        apps.create_namespaced_deployment("vamp-x", both)
    assert refused.value.status == 422 and "rollingUpdate" in refused.value.body
    apps.create_namespaced_deployment("vamp-x", body)  # as the driver writes it: accepted


def test_every_daemon_request_is_granted_by_the_cluster_role(k8s):
    from tests.infra.test_agent_manifests import AGENT, granted, rbac_of, render

    driver, fake = k8s
    fake.requests.clear()
    driver.run_daemon("ns", _spec())
    driver.run_daemon("ns", _spec(token="vamp_fresh"))
    driver.daemons("ns")
    driver.stop_daemon("ns", "watcher")
    rules, _ = granted(render(AGENT))
    asked = set(fake.requests)
    assert {m for m, _ in asked} >= {"GET", "PATCH", "DELETE"}
    for method, path in asked:
        needed = rbac_of(method, path, apply=method == "PATCH")
        assert needed <= rules, (method, path, needed - rules)


def test_a_daemon_workflow_on_kubernetes_through_the_api(kube):  # noqa: F811 (the fixture)
    """Namespace `team` on the fake by kubeconfig: created -> a Deployment with the workflow's
    environment and a live token; restart -> replaced with a new token; suspend -> removed."""
    from chalicelib.store.tokens import DynamoDBTokenStore

    api, fake = kube
    assert api.post("/team/api/v1/breeds", {"name": "img", "deployable": "busybox:1.36"}).status_code == 201
    assert api.post("/team/api/v1/workflows", {"name": "w", "breed": "img", "schedule": "daemon"}).status_code == 202
    assert api.get("/team/api/v1/workflows/w/status").json == "running"
    name = daemon_object_name("w")

    def env():
        dep = fake.objects("deployments", "vamp-team")[name]
        return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}

    first = env()
    assert (first["VAMP_NAMESPACE"], first["VAMP_WORKFLOW_NAME"]) == ("team", "w")
    assert DynamoDBTokenStore().authenticate(first["VAMP_API_TOKEN"]).namespaces == ("team",)
    assert api.put("/team/api/v1/workflows/w/status", "restart").json == "running"
    assert env()["VAMP_API_TOKEN"] != first["VAMP_API_TOKEN"]
    assert DynamoDBTokenStore().authenticate(first["VAMP_API_TOKEN"]) is None
    assert api.put("/team/api/v1/workflows/w/status", "suspend").json == "suspended"
    assert name not in fake.objects("deployments", "vamp-team")
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]


def test_a_daemons_arguments_reach_its_validated_pod_or_are_refused_sending_nothing(k8s):
    import dataclasses

    from chalicelib.drivers.base import DriverError

    driver, fake = k8s
    driver.run_daemon("ns", dataclasses.replace(_spec(), arguments=(("read-only", "true"), ("label", "team=ops"))))
    dep = fake.objects("deployments", "vamp-ns")[daemon_object_name("watcher")]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert dep["spec"]["template"]["metadata"]["labels"]["team"] == "ops"
    before = len(fake.requests)
    with pytest.raises(DriverError, match="argument 'cap-add'.*policy refuses"):
        driver.run_daemon("ns", dataclasses.replace(_spec(), name="other", arguments=(("cap-add", "SYS_ADMIN"),)))
    assert not any(m in ("POST", "PATCH", "PUT") for m, *_ in fake.requests[before:])
