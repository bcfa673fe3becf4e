"""Issue 11 (Kubernetes driver, 2, 3, 7, 9): writes that survive failures between them, deleted
and Terminating namespaces, a status that says running only when every pod runs the new version,
and pods that mean what the blueprint says (env, ports, memory, probes), written so that what
other tools add is kept (docs/decisions/0027). Against the fake API server, which refuses and
rolls as a real one does (tests/fakes/kubernetes_server.py)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.drivers import DriverError
from chalicelib.drivers.base import HealthCheckSpec, PortSpec
from chalicelib.drivers.kube_policy import KubeRules
from chalicelib.drivers.kubernetes import KubernetesDriver, deployment_manifest, kube_object_name
from tests.drivers.helpers import image_spec
from tests.drivers.test_kubernetes import client_for
from tests.drivers.test_trust_boundaries import IMAGE, blueprint, forget_settings, kube  # noqa: F401 (fixtures)
from tests.fakes.kubernetes_server import quantity


@pytest.fixture()
def k8s(fake_kubernetes):
    fake_kubernetes.pause()  # each test steps the deployment controller itself
    return KubernetesDriver(lambda: client_for(fake_kubernetes), KubeRules()), fake_kubernetes


def _writes(method: str, path: str, body) -> bool:
    return method in ("POST", "PUT", "PATCH")


def deployment_of(fake, kube_namespace: str) -> dict:
    (dep,) = fake.objects("deployments", kube_namespace).values()
    return dep


# -- 2: a failure between the Deployment write and the Service write ---------------------------

def test_a_service_write_that_failed_is_written_on_the_next_pass(k8s):
    driver, fake = k8s
    spec = image_spec()
    fake.fail(503, path="/api/v1/namespaces/vamp-s1/services*", when=_writes)
    with pytest.raises(DriverError, match="503"):
        driver.deploy("s1", spec)
    assert fake.objects("deployments", "vamp-s1") and not fake.objects("services", "vamp-s1")
    # The Deployment alone is not this digest running: synchronisation deploys again.
    assert driver.running("s1") == {spec.key: None}
    fake.settle()
    st = driver.status("s1", [spec.key])[spec.key]
    assert st.state == "deploying" and "service missing" in st.reason and st.digest is None
    driver.deploy("s1", spec)
    assert driver.running("s1") == {spec.key: spec.digest()}
    assert driver.status("s1", [spec.key])[spec.key].state == "running"


def test_a_service_left_at_the_previous_version_is_not_this_version_running(k8s):
    driver, fake = k8s
    old, new = image_spec(), image_spec(ports=(PortSpec("webport", 8080), PortSpec("admin", 9090)))
    driver.deploy("s2", old)
    fake.settle()
    fake.fail(500, path="/api/v1/namespaces/vamp-s2/services/*", when=_writes)
    with pytest.raises(DriverError):
        driver.deploy("s2", new)
    assert driver.running("s2") == {new.key: None}  # the Deployment has new's digest, the Service old's
    fake.settle()
    assert driver.status("s2", [new.key])[new.key].state == "deploying"
    driver.deploy("s2", new)
    (svc,) = fake.objects("services", "vamp-s2").values()
    assert [p["port"] for p in svc["spec"]["ports"]] == [8080, 9090]
    assert driver.running("s2") == {new.key: new.digest()}


def test_the_next_synchronisation_pass_writes_the_missing_service(request):
    """Through the API and the scheduled pass, not only the driver's contract."""
    from chalicelib.deployments.sync import sync_deployment
    from chalicelib.drivers import driver_for
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    api, fake = request.getfixturevalue("kube")  # the API with namespace `team` on the fake API server
    fake.fail(503, path="/api/v1/namespaces/vamp-team/services/*", when=_writes)
    # The API's own pass: the Deployment written, the Service refused.
    assert api.post("/team/api/v1/deployments", blueprint(IMAGE)).status_code == 202
    assert len(fake.objects("deployments", "vamp-team")) == 1 and not fake.objects("services", "vamp-team")
    store, driver = DynamoDBArtifactStore(), driver_for("team")
    stored = store.get("team", "deployments", "shop")
    later = datetime.now(timezone.utc) + timedelta(hours=1)  # past the failure's retry backoff
    sync_deployment(store, "team", stored, driver, driver.running("team"), lambda *_: None, clock=later)
    assert len(fake.objects("services", "vamp-team")) == 1
    api.delete("/team/api/v1/deployments/shop?force=true")


@pytest.mark.parametrize("failing", ["/api/v1/namespaces/vamp-s3/services/*",
                                     "/apis/apps/v1/namespaces/vamp-s3/deployments/*"])
def test_an_undeploy_interrupted_between_its_deletes_is_finished_on_the_next_pass(k8s, failing):
    # The same two writes the other way: once the Deployment is gone running() no longer lists
    # the service, so a Service left behind would never be deleted.
    driver, fake = k8s
    spec = image_spec()
    driver.deploy("s3", spec)
    fake.fail(500, method="DELETE", path=failing)
    with pytest.raises(DriverError):
        driver.undeploy("s3", "sava", "sava", "sava:1.0.0")
    assert spec.key in driver.running("s3")  # synchronisation undeploys it again
    driver.undeploy("s3", "sava", "sava", "sava:1.0.0")
    assert fake.objects("services", "vamp-s3") == {} and fake.objects("deployments", "vamp-s3") == {}


# -- 3: the namespace cache ------------------------------------------------------------------

def test_a_deleted_namespace_is_created_again_without_a_cold_start(k8s):
    driver, fake = k8s
    spec = image_spec()
    driver.deploy("n1", spec)
    fake.terminate("vamp-n1")  # an operator's `kubectl delete namespace vamp-n1`
    fake.settle()
    assert "vamp-n1" not in fake.objects("namespaces") and driver.running("n1") == {}
    driver.deploy("n1", spec)  # the same driver: its cache said the namespace exists
    labels = fake.objects("namespaces")["vamp-n1"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # re-created as vamp's
    assert driver.running("n1") == {spec.key: spec.digest()}


def test_a_terminating_namespace_is_a_clear_reason_until_it_is_gone(k8s):
    driver, fake = k8s
    driver.deploy("n2", image_spec())
    fake.terminate("vamp-n2", stuck=True)  # a finalizer that takes its time
    other = image_spec(service="sava:2.0.0", definition="magneticio/sava:2.0.0")
    for _ in range(2):  # the first finds out by its write, the second by reading the namespace
        with pytest.raises(DriverError) as refused:
            driver.deploy("n2", other)
        assert "vamp-n2 is being deleted (Terminating)" in str(refused.value)
    reads_only = fake.requests[-1]
    assert reads_only == ("GET", "/api/v1/namespaces/vamp-n2")  # nothing written into it the second time
    fake.finish_termination("vamp-n2")
    fake.settle()
    driver.deploy("n2", other)
    assert driver.running("n2") == {other.key: other.digest()}


# -- 7: status --------------------------------------------------------------------------------

def test_running_only_once_no_old_pod_serves(k8s):
    driver, fake = k8s
    v1 = image_spec()
    driver.deploy("r1", v1)
    fake.settle()
    assert driver.status("r1", [v1.key])[v1.key].state == "running"
    v2 = image_spec(definition="magneticio/sava:1.0.1")  # a new image: a new ReplicaSet
    driver.deploy("r1", v2)
    seen = []
    for _ in range(10):
        st = driver.status("r1", [v2.key])[v2.key]
        s = deployment_of(fake, "vamp-r1")["status"]
        seen.append((s.get("replicas", 0), s.get("updatedReplicas", 0), s.get("availableReplicas", 0), st.state))
        if st.state == "running":
            break
        fake.advance()
    old_and_new = [x for x in seen if x[0] > x[1] and x[1] > 0]
    assert old_and_new, seen  # the fake did roll: old and new pods side by side
    assert all(state != "running" for replicas, updated, _, state in seen if replicas > updated), seen
    assert seen[-1] == (2, 2, 2, "running"), seen


def test_a_stale_progress_deadline_is_not_read_for_the_next_generation(k8s):
    driver, fake = k8s
    broken = image_spec(definition="magneticio/sava:broken")
    driver.deploy("r2", broken)
    fake.advance()
    fake.fail_rollout("vamp-r2", deployment_of(fake, "vamp-r2")["metadata"]["name"])
    fake.settle()
    st = driver.status("r2", [broken.key])[broken.key]
    assert st.state == "failed" and "ProgressDeadlineExceeded" in st.reason
    fixed = image_spec(definition="magneticio/sava:fixed")
    driver.deploy("r2", fixed)
    # The controller has not seen generation 2 yet: its status still speaks of generation 1.
    dep = deployment_of(fake, "vamp-r2")
    assert dep["status"]["observedGeneration"] < dep["metadata"]["generation"]
    assert any(c["reason"] == "ProgressDeadlineExceeded" for c in dep["status"]["conditions"])
    st = driver.status("r2", [fixed.key])[fixed.key]
    assert st.state == "deploying" and "observe generation 2" in st.reason
    fake.settle()
    assert driver.status("r2", [fixed.key])[fixed.key].state == "running"


def test_a_scaled_down_deployment_is_running_once_the_extra_pods_are_gone(k8s):
    driver, fake = k8s
    driver.deploy("r3", image_spec(instances=4))
    fake.settle()
    two = image_spec(instances=2)
    driver.deploy("r3", two)
    assert driver.status("r3", [two.key])[two.key].state == "deploying"  # not observed yet
    fake.settle()
    st = driver.status("r3", [two.key])[two.key]
    assert st.state == "running" and st.desired == 2


# -- 9: what the pod means --------------------------------------------------------------------

def _expand(value: str, env: dict[str, str]) -> str:
    """What the kubelet makes of an env value: `$$` is `$`, `$(NAME)` another variable's value."""
    return re.sub(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def test_env_values_reach_the_container_as_written(k8s):
    driver, fake = k8s
    values = {"PRICE": "costs $5", "RAW": "$(HOME)/x and $$ and $", "HOME": "/root", "PLAIN": "a"}
    driver.deploy("e1", image_spec(env=values))
    env = deployment_of(fake, "vamp-e1")["spec"]["template"]["spec"]["containers"][0]["env"]
    seen = {e["name"]: _expand(e["value"], values) for e in env}
    assert seen == values  # as the local and ECS drivers pass them: no expansion


@pytest.mark.parametrize("name", ["1ABC", "A=B", "MY VAR", "ÄPFEL", ".", "..", "..X", ""])
def test_env_names_an_api_server_refuses_are_refused_before_any_request(k8s, name):
    driver, fake = k8s
    with pytest.raises(DriverError) as refused:
        driver.deploy("e2", image_spec(env={name: "1"}))
    assert "environment variable name" in str(refused.value) and repr(name) in str(refused.value)
    assert fake.requests == []


def test_env_names_every_api_server_accepts_pass(k8s):
    driver, fake = k8s
    env = {"my.env-name": "1", "MY_ENV.NAME": "2", "_X": "3", "-dash": "4", ".hidden": "5"}
    driver.deploy("e3", image_spec(env=env))
    names = [e["name"] for e in deployment_of(fake, "vamp-e3")["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert sorted(names) == sorted(env)


def test_a_health_check_on_a_port_the_breed_lacks_is_refused_with_its_reason(k8s):
    driver, fake = k8s
    spec = image_spec(health_checks=(HealthCheckSpec("admin", "/health", "HTTP", 0, 5, 10, 3),))
    with pytest.raises(DriverError) as refused:
        driver.deploy("h1", spec)
    assert "health check on port 'admin': the breed has no such port (its ports: webport)" in str(refused.value)
    assert fake.requests == []  # never `port: null`


@pytest.mark.parametrize("memory, quantity_text, nbytes", [
    (256.0, "256M", 256_000_000), (1000.0, "1000M", 10 ** 9), (0.5, "500k", 500_000), (128.25, "128250k", 128_250_000),
])
def test_memory_is_vamps_decimal_megabytes(memory, quantity_text, nbytes):
    container = deployment_manifest("ns", image_spec(memory=memory))["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"] == quantity_text
    assert quantity(quantity_text) == nbytes


def test_liveness_is_more_tolerant_than_readiness():
    check = HealthCheckSpec("webport", "/health", "HTTP", 10, 5, 10, 3)
    container = deployment_manifest("ns", image_spec(health_checks=(check,)))["spec"]["template"]["spec"][
        "containers"][0]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness == {"initialDelaySeconds": 10, "timeoutSeconds": 5, "periodSeconds": 10, "failureThreshold": 3,
                         "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}}
    assert liveness["httpGet"] == readiness["httpGet"] and liveness["periodSeconds"] == readiness["periodSeconds"]
    # restarted only after three times the misses that take it out of the routes, counted once
    # readiness could have given up a first time
    assert liveness["failureThreshold"] == 9 and liveness["initialDelaySeconds"] == 10 + 10 * 3


def test_an_update_keeps_what_other_tools_added(k8s):
    from kubernetes import client

    driver, fake = k8s
    driver.deploy("p1", image_spec(env={"A": "1", "B": "2"}, labels={"team": "x"}))
    name = kube_object_name("sava", "sava", "sava:1.0.0")
    apps = client.AppsV1Api(client_for(fake))
    # `kubectl rollout restart` (a strategic merge patch of the pod template's annotations)...
    apps.patch_namespaced_deployment(name, "vamp-p1", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-03T07:00:00Z"}}}}}, field_manager="kubectl-rollout")
    # ... and a label another controller sets (a merge patch).
    apps.patch_namespaced_deployment(name, "vamp-p1", {"metadata": {"labels": {"mesh.example/injected": "true"}}},
                                     field_manager="mesh", _content_type="application/merge-patch+json")
    driver.deploy("p1", image_spec(env={"A": "1"}, labels={}, definition="magneticio/sava:1.0.1"))
    dep = deployment_of(fake, "vamp-p1")
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2026-12-03T07:00:00Z"
    assert dep["metadata"]["labels"]["mesh.example/injected"] == "true"
    (container,) = template["spec"]["containers"]
    assert container["image"] == "magneticio/sava:1.0.1"
    # What vamp itself no longer sets is gone: the env var B, the label team.
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert "team" not in dep["metadata"]["labels"] and "team" not in template["metadata"]["labels"]
    managers = {f["manager"]: f["operation"] for f in dep["metadata"]["managedFields"]}
    assert managers == {"vamp": "Apply", "kubectl-rollout": "Update", "mesh": "Update"}


def test_vamp_takes_back_the_fields_it_owns(k8s):
    from kubernetes import client

    driver, fake = k8s
    spec = image_spec()
    driver.deploy("p2", spec)
    name = kube_object_name("sava", "sava", "sava:1.0.0")
    apps = client.AppsV1Api(client_for(fake))
    apps.patch_namespaced_deployment(name, "vamp-p2", {"spec": {"replicas": 7}}, field_manager="kubectl-edit")
    driver.deploy("p2", spec)  # forced: the blueprint's scale, not a hand edit, is what runs
    assert deployment_of(fake, "vamp-p2")["spec"]["replicas"] == 2


@pytest.mark.parametrize("level", ["cluster", "service"])
def test_a_blueprints_health_check_on_a_port_its_breed_lacks_is_a_400(request, level):
    # The breed's own checks were checked; a cluster's or a service's were not, and reached the
    # driver as a probe on no port.
    api, fake = request.getfixturevalue("kube")
    check = {"port": "admin", "path": "/health", "initial_delay": "1s", "timeout": "1s", "interval": "5s",
             "failures": 3}
    body = blueprint(IMAGE, **({"health_checks": [check]} if level == "service" else {}))
    if level == "cluster":
        body["clusters"]["web"]["health_checks"] = [check]
    r = api.post("/team/api/v1/deployments", body)
    assert r.status_code == 400, r.body
    (error,) = r.json["errors"]
    prefix = "clusters.web.services[0]." if level == "service" else "clusters.web."
    assert error["path"] == prefix + "health_checks[0].port" and "'admin' is not a port of breed 'web:1'" in \
        error["reason"]
    assert api.get("/team/api/v1/deployments/shop").status_code == 404 and fake.requests == []
    check["port"] = "port"
    assert api.post("/team/api/v1/deployments", body).status_code == 202
    api.delete("/team/api/v1/deployments/shop?force=true")
