"""The kubernetes driver through the REAL kubernetes client against a fake API server
(tests/fakes/kubernetes_server.py), the EKS token against moto's STS/EKS, and a real cluster
when KUBECONFIG is set."""
from __future__ import annotations

import base64
import json
import os
import threading
import urllib.parse
import uuid

import pytest
import requests

from chalicelib.drivers import Guarded
from chalicelib.drivers.base import DriverError, PortSpec, merge_dialect
from chalicelib.drivers.kube_policy import KubeRules
from chalicelib.drivers.kubernetes import (
    KubernetesDriver,
    deployment_manifest,
    eks_configuration,
    eks_token,
)
from tests.drivers.helpers import image_spec


def client_for(target, token: str | None = None):
    """A client of the fake API server (its URL and bearer token), or of a bare URL."""
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = getattr(target, "url", target)
    token = token or getattr(target, "token", None)
    if token:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


@pytest.fixture()
def k8s(fake_kubernetes):
    return KubernetesDriver(lambda: client_for(fake_kubernetes), KubeRules()), fake_kubernetes


def test_deploy_creates_namespace_deployment_and_service(k8s):
    driver, fake = k8s
    spec = image_spec(dialects={"kubernetes": {"nodeSelector": {"pool": "a"},
                                               "containers": [{"name": "service", "imagePullPolicy": "Always"}]}})
    driver.deploy("team-a", spec)
    # Vamp namespace team-a is Kubernetes namespace vamp-team-a, labelled for Pod Security.
    assert list(fake.objects("namespaces")) == ["vamp-team-a"]
    labels = fake.objects("namespaces")["vamp-team-a"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "vamp" and labels["vamp.io/namespace"] == "team-a"
    assert {m: labels[f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "audit", "warn")} == {
        "enforce": "restricted", "audit": "restricted", "warn": "restricted"}
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    (name, dep), = fake.objects("deployments", "vamp-team-a").items()
    assert name.startswith("sava-sava-sava-1-0-0-")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "magneticio/sava:1.0.0" and c["imagePullPolicy"] == "Always"
    assert pod["nodeSelector"] == {"pool": "a"}
    # The restricted securityContext by default, and no service account token.
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert pod["automountServiceAccountToken"] is False
    assert c["resources"]["limits"] == {"cpu": "200m", "memory": "256M"}  # Vamp's MB are decimal
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert c["ports"] == [{"name": "webport", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080, "scheme": "HTTP"}
    assert c["readinessProbe"]["failureThreshold"] == 3 and c["livenessProbe"]["failureThreshold"] == 9
    assert dep["spec"]["replicas"] == 2
    assert dep["metadata"]["labels"]["vamp.io/service"] == "sava_1.0.0"
    assert dep["metadata"]["annotations"]["vamp.io/key"] == "sava/sava/sava:1.0.0"
    svc = fake.objects("services", "vamp-team-a")[name]
    assert svc["spec"]["selector"] == {"vamp.io/name": name} and svc["spec"]["ports"][0]["port"] == 8080

    fake.settle()  # the deployment controller rolls the pods out
    status = driver.status("team-a", [spec.key, "sava/sava/other"])
    st = status[spec.key]
    assert st.state == "running" and st.digest == spec.digest() and st.desired == 2
    assert st.instances[0].host.startswith("10.96.") and st.instances[0].ports == {"webport": 8080}
    assert status["sava/sava/other"].state == "absent"
    assert driver.running("team-a") == {spec.key: spec.digest()}


def test_update_is_a_server_side_apply_and_keeps_cluster_ip(k8s):
    driver, fake = k8s
    spec = image_spec()
    driver.deploy("ns1", spec)
    ip = next(iter(fake.objects("services", "vamp-ns1").values()))["spec"]["clusterIP"]
    driver.deploy("ns1", image_spec(instances=5, env={"A": "2"}))
    dep = next(iter(fake.objects("deployments", "vamp-ns1").values()))
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["generation"] == 2
    assert next(iter(fake.objects("services", "vamp-ns1").values()))["spec"]["clusterIP"] == ip
    writes = [(m, p.split("/")[-2]) for m, p in fake.requests if m != "GET"]
    # The namespace once (then cached), then each object applied, never a PUT of the whole object.
    assert writes == [("POST", "v1"), ("PATCH", "deployments"), ("PATCH", "services"),
                      ("PATCH", "deployments"), ("PATCH", "services")]
    assert [f["manager"] for f in dep["metadata"]["managedFields"]] == ["vamp"]


def test_progress_deadline_is_a_failed_status_with_its_reason(k8s):
    driver, fake = k8s
    spec = image_spec()
    driver.deploy("ns2", spec)
    name = next(iter(fake.objects("deployments", "vamp-ns2")))
    fake.set_status("vamp-ns2", name, {"observedGeneration": 1, "replicas": 2, "readyReplicas": 0, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": "ReplicaSet has timed out progressing."}]})
    st = driver.status("ns2", [spec.key])[spec.key]
    assert st.state == "failed" and "ProgressDeadlineExceeded" in st.reason
    fake.set_status("vamp-ns2", name, {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2,
                                       "availableReplicas": 1})
    st = driver.status("ns2", [spec.key])[spec.key]
    assert st.state == "deploying" and st.reason == "2/2 replicas updated, 1 available"


def test_undeploy_removes_both_and_is_idempotent(k8s):
    driver, fake = k8s
    spec = image_spec()
    driver.deploy("ns3", spec)
    driver.undeploy("ns3", "sava", "sava", "sava:1.0.0")
    assert fake.objects("deployments", "vamp-ns3") == {} and fake.objects("services", "vamp-ns3") == {}
    driver.undeploy("ns3", "sava", "sava", "sava:1.0.0")
    assert driver.running("ns3") == {} and driver.running("never-used") == {}


def test_api_errors_become_reasons_not_crashes(k8s):
    driver, fake = k8s
    guarded = Guarded(driver)
    fake.fail_next(503)
    with pytest.raises(Exception) as info:
        guarded.deploy("ns4", image_spec())
    assert "kubernetes API 503: injected failure" in str(info.value)
    fake.fail_next(503)
    st = guarded.status("ns4", ["a/b/c"])["a/b/c"]
    assert st.state == "failed" and "503" in st.reason
    fake.fail_next(500)
    assert guarded.running("ns4") is None
    unreachable = Guarded(KubernetesDriver(lambda: client_for("http://127.0.0.1:1")))
    st = unreachable.status("ns", ["a/b/c"])["a/b/c"]
    assert st.state == "failed" and st.reason


def test_command_deployables_are_refused():
    with pytest.raises(Exception, match="container images"):
        deployment_manifest("ns", image_spec(deployable_type="command", definition="sleep 1"))


def test_merge_dialect_by_name():
    base = {"containers": [{"name": "service", "image": "a", "env": [{"name": "X", "value": "1"}]}]}
    extra = {"containers": [{"name": "service", "env": [{"name": "Y", "value": "2"}]}, {"name": "sidecar"}],
             "hostNetwork": True}
    merged = merge_dialect(base, extra)
    assert merged["containers"][0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert merged["containers"][1] == {"name": "sidecar"} and merged["hostNetwork"] is True


def test_long_and_odd_names_are_dns_labels(k8s):
    driver, fake = k8s
    spec = image_spec(deployment="D" * 80, cluster="Cl_ust.er", service="x:1.0.0-RC_1",
                      ports=(PortSpec("a-very-long-port-name-here", 80),), health_checks=())
    driver.deploy("ns5", spec)
    (name,) = fake.objects("deployments", "vamp-ns5")
    assert len(name) <= 63 and name == name.lower()
    assert driver.running("ns5") == {spec.key: spec.digest()}


def _raised(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - returned for the assertion
        return e
    return None


def test_a_hung_api_server_fails_the_call_instead_of_stalling_the_pass(fake_kubernetes):
    # The API server accepts the connection and never answers: without a request timeout the
    # call (and the whole sync pass behind it) would wait forever; with one it fails, clearly.
    driver = KubernetesDriver(lambda: client_for(fake_kubernetes), KubeRules(), request_timeout=(1.0, 3.0))
    # 3 s to read: short against the 60 s hang, long enough for a loaded machine to answer the last deploy.
    fake_kubernetes.hang()
    outcome: list = []

    def deploy() -> None:
        try:
            driver.deploy("ns9", image_spec())
        except Exception as e:  # noqa: BLE001 - what it raised is the assertion
            outcome.append(e)
    worker = threading.Thread(target=deploy, daemon=True)
    worker.start()
    worker.join(30)  # a guard against hanging the suite, not a speed bound: the hang lasts 60 s
    fake_kubernetes.answer()
    assert not worker.is_alive(), "the driver waited on a server that never answers"
    (error,) = outcome
    assert isinstance(error, DriverError) and "not answering" in str(error)
    fake_kubernetes.hang()
    reading = threading.Thread(target=lambda: outcome.append(_raised(driver.running, "ns9")), daemon=True)
    reading.start()
    reading.join(30)
    fake_kubernetes.answer()
    assert not reading.is_alive() and isinstance(outcome[-1], DriverError), outcome
    driver.deploy("ns9", image_spec())  # answered again: the next pass deploys
    assert driver.running("ns9") == {image_spec().key: image_spec().digest()}


def test_a_change_of_scale_alone_leaves_the_pod_template_alone(k8s):
    # A changed pod template makes Kubernetes roll every pod: scaling must only change replicas.
    driver, fake = k8s
    two = image_spec(instances=2)
    driver.deploy("ns8", two)
    (before,) = fake.objects("deployments", "vamp-ns8").values()
    five = image_spec(instances=5)
    driver.deploy("ns8", five)
    (after,) = fake.objects("deployments", "vamp-ns8").values()
    assert after["spec"]["replicas"] == 5
    assert after["spec"]["template"] == before["spec"]["template"]
    assert driver.running("ns8") == {five.key: five.digest()}  # and sync sees the new scale as done
    newer = image_spec(instances=5, definition="magneticio/sava:1.1.0")
    driver.deploy("ns8", newer)
    (rolled,) = fake.objects("deployments", "vamp-ns8").values()
    assert rolled["spec"]["template"]["metadata"]["annotations"] != before["spec"]["template"]["metadata"]["annotations"]


def test_a_blueprint_named_with_a_digit_first_gets_a_service_the_api_server_accepts(k8s):
    # Service names are DNS-1035 labels (a letter first): the fake refuses `2024-promo-...` with
    # 422 as the API server does, so a digit-first name would leave the service missing forever.
    driver, fake = k8s
    spec = image_spec(deployment="2024-promo", cluster="9lives", service="1web:1.0.0")
    driver.deploy("ns6", spec)
    (service,) = fake.objects("services", "vamp-ns6")
    (deployment,) = fake.objects("deployments", "vamp-ns6")
    assert service == deployment and service.startswith("v-2024-promo-") and len(service) <= 63
    assert driver.running("ns6") == {spec.key: spec.digest()}


@pytest.mark.parametrize("names", [
    ("management-port-a", "management-port-b"),  # the same after truncation to 15
    ("web_port", "web-port"),  # the same after normalisation
    ("wéb", "web"),  # Unicode letters: not [a-z0-9-], and then the same
    ("port-1", "-", "web"),  # a breed port literally named like the fallback of another
    ("8080", "a--b", "__"),  # no letter, '--', nothing left
])
def test_port_names_are_valid_and_unique_whatever_the_breed_calls_them(k8s, names):
    driver, fake = k8s
    ports = tuple(PortSpec(n, 8000 + i) for i, n in enumerate(names))
    spec = image_spec(ports=ports, health_checks=())
    driver.deploy("ns7", spec)  # the fake answers 422 to an invalid or duplicate port name
    (dep,) = fake.objects("deployments", "vamp-ns7").values()
    (svc,) = fake.objects("services", "vamp-ns7").values()
    container_names = [p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]]
    assert len(set(container_names)) == len(names) == len(svc["spec"]["ports"])
    assert [p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]] == \
        [8000 + i for i in range(len(names))]
    assert driver.running("ns7") == {spec.key: spec.digest()}
    # The breed's own names travel in the annotation Vamp reads back, whatever Kubernetes was given.
    assert json.loads(svc["metadata"]["annotations"]["vamp.io/ports"]) == {n: 8000 + i for i, n in enumerate(names)}


def test_the_fake_refuses_what_the_api_server_refuses_in_names(fake_kubernetes):
    api = client_for(fake_kubernetes)
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "vamp-x"}})
    for body in ({"metadata": {"name": "2024-promo"}, "spec": {"ports": [{"name": "web", "port": 80}]}},
                 {"metadata": {"name": "ok"}, "spec": {"ports": [{"name": "web-port", "port": 80},
                                                                 {"name": "web-port", "port": 81}]}},
                 {"metadata": {"name": "ok"}, "spec": {"ports": [{"name": "management-port-a", "port": 80}]}}):
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_service("vamp-x", body)
        assert refused.value.status == 422


# -- EKS: the token `aws eks get-token` would give, against moto's STS and EKS ----------------

def test_eks_token_is_a_presigned_get_caller_identity(aws):
    import boto3

    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=aws)
    token = eks_token("my-cluster", sts)
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    raw = token[len("k8s-aws-v1."):]
    url = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["Action"] == ["GetCallerIdentity"] and query["Version"] == ["2011-06-15"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Expires"] == ["60"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    # EKS GETs the URL with the header and STS answers the caller's identity. moto's one-port
    # server picks the service from an Authorization header's credential scope only, so the
    # query's own signature is restated as that header (same credential, headers, signature).
    auth = (f"AWS4-HMAC-SHA256 Credential={query['X-Amz-Credential'][0]}, "
            f"SignedHeaders={query['X-Amz-SignedHeaders'][0]}, Signature={query['X-Amz-Signature'][0]}")
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/sts/aws4_request")
    answer = requests.get(url, headers={"x-k8s-aws-id": "my-cluster", "Authorization": auth}, timeout=5)
    assert answer.status_code == 200 and "GetCallerIdentityResult" in answer.text


def test_eks_configuration_from_describe_cluster(aws):
    import boto3

    eks = boto3.client("eks", region_name="us-east-1", endpoint_url=aws)
    name = f"c{uuid.uuid4().hex[:8]}"
    eks.create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/eks",
                       resourcesVpcConfig={"subnetIds": []})
    described = eks.describe_cluster(name=name)["cluster"]
    cfg = eks_configuration(name, "us-east-1", aws)
    assert cfg.host == described["endpoint"]
    with open(cfg.ssl_ca_cert, "rb") as f:
        assert f.read() == base64.b64decode(described["certificateAuthority"]["data"])
    assert cfg.get_api_key_with_prefix("authorization").startswith("Bearer k8s-aws-v1.")


def test_eks_token_is_set_on_a_freshly_booted_host(aws, monkeypatch):
    # time.monotonic() counts from boot: a Lambda environment or CI host up for seconds must still
    # get a token on the first request, and a new one once it expires.
    import boto3

    from chalicelib.drivers import kubernetes as k8s

    clock = [5.0]
    monkeypatch.setattr(k8s.time, "monotonic", lambda: clock[0])
    eks = boto3.client("eks", region_name="us-east-1", endpoint_url=aws)
    name = f"c{uuid.uuid4().hex[:8]}"
    eks.create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": []})
    cfg = eks_configuration(name, "us-east-1", aws)
    first = cfg.get_api_key_with_prefix("authorization")
    assert first.startswith("Bearer k8s-aws-v1.")
    clock[0] += k8s.TOKEN_TTL + 1
    issued = []
    monkeypatch.setattr(k8s, "eks_token", lambda *a: issued.append(1) or "k8s-aws-v1.renewed")
    assert cfg.get_api_key_with_prefix("authorization") == "Bearer k8s-aws-v1.renewed" and issued == [1]


# -- a real cluster --------------------------------------------------------------------------

@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set: no real cluster to test against")
def test_against_a_real_cluster():
    from kubernetes import config

    from tests.drivers.helpers import wait_for

    driver = KubernetesDriver(lambda: config.new_client_from_config())
    ns = f"test-{uuid.uuid4().hex[:6]}"
    # An image that runs as a non-root user (the restricted securityContext refuses root).
    spec = image_spec(deployment="t", cluster="c", service="nginx:1", definition="nginxinc/nginx-unprivileged:alpine",
                      ports=(PortSpec("web", 8080),), health_checks=(), instances=1, cpu=0.05, memory=32.0)
    try:
        driver.deploy(ns, spec)
        assert driver.running(ns) == {spec.key: spec.digest()}
        st = wait_for(lambda: (s := driver.status(ns, [spec.key])[spec.key]).state == "running" and s, timeout=180)
        assert st.instances and st.instances[0].healthy
        # `kubectl rollout restart`'s annotation survives vamp's next write (server-side apply).
        from kubernetes import client as kube_client

        from chalicelib.drivers.kubernetes import kube_object_name

        apps = kube_client.AppsV1Api(config.new_client_from_config())
        name, kube = kube_object_name("t", "c", "nginx:1"), driver.kube_namespace(ns)
        apps.patch_namespaced_deployment(name, kube, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}, field_manager="kubectl-rollout")
        driver.deploy(ns, spec)
        template = apps.read_namespaced_deployment(name, kube).spec.template
        assert template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "2026-01-01T00:00:00Z"
        wait_for(lambda: driver.status(ns, [spec.key])[spec.key].state == "running", timeout=180)
        driver.undeploy(ns, "t", "c", "nginx:1")
        assert driver.running(ns) == {}
    finally:
        from kubernetes import client

        client.CoreV1Api(config.new_client_from_config()).delete_namespace(driver.kube_namespace(ns))
