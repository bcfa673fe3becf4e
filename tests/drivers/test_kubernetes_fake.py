"""The fake Kubernetes API server refuses what a real one refuses and moves as a real one moves
(issue 11): a test that passes against it must not be a test that a real cluster would fail.
Requests go through the REAL kubernetes client, or raw HTTP where the client would not send them."""
from __future__ import annotations

import copy
import json

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chalicelib.drivers.kubernetes import deployment_manifest, service_manifest
from tests.drivers.helpers import image_spec
from tests.drivers.test_kubernetes import client_for

NS = "vamp-f"


@pytest.fixture()
def fake(fake_kubernetes):
    fake_kubernetes.pause()
    client.CoreV1Api(client_for(fake_kubernetes)).create_namespace({"metadata": {"name": NS}})
    return fake_kubernetes


def apis(fake):
    api = client_for(fake)
    return client.CoreV1Api(api), client.AppsV1Api(api)


def refusal(call, *args, **kwargs) -> ApiException:
    with pytest.raises(ApiException) as refused:
        call(*args, **kwargs)
    return refused.value


def message(e: ApiException) -> str:
    return json.loads(e.body)["message"]


def raw(fake, method: str, path: str, body, content_type: str = "application/json", **params) -> requests.Response:
    """A request the client would refuse to send (its models check types and fields first)."""
    return requests.request(method, fake.url + path, data=json.dumps(body), params=params, timeout=5,
                            headers={"Authorization": f"Bearer {fake.token}", "Content-Type": content_type})


def valid_deployment() -> dict:
    return deployment_manifest(NS, image_spec())


# -- authentication -----------------------------------------------------------------------------

def test_a_request_without_the_bearer_token_is_401(fake):
    assert requests.get(f"{fake.url}/api/v1/namespaces", timeout=5).status_code == 401
    wrong = requests.get(f"{fake.url}/api/v1/namespaces", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["reason"] == "Unauthorized"
    core = client.CoreV1Api(client_for(fake.url))  # a client with no credentials
    assert refusal(core.list_namespace).status == 401
    assert client.CoreV1Api(client_for(fake)).list_namespace().items


# -- validation: the official schemas, then the API server's own rules --------------------------

def _mutated(change) -> dict:
    body = copy.deepcopy(valid_deployment())
    change(body)
    return body


def _container(body) -> dict:
    return body["spec"]["template"]["spec"]["containers"][0]


INVALID_DEPLOYMENTS = {
    "unknown field": (lambda b: _container(b).update(bogus=1), "bogus"),
    "wrong type": (lambda b: b["spec"].update(replicas="2"), "spec.replicas"),
    "env name": (lambda b: _container(b)["env"].append({"name": "1X", "value": "v"}), "env[1].name"),
    "env name with =": (lambda b: _container(b)["env"].append({"name": "A=B", "value": "v"}), "env[1].name"),
    "quantity": (lambda b: _container(b)["resources"]["limits"].update(memory="256MB"), "resources.limits[memory]"),
    "requests above limits": (lambda b: _container(b)["resources"]["requests"].update(memory="1G"),
                              "resources.requests"),
    "probe port null": (lambda b: _container(b)["readinessProbe"]["httpGet"].update(port=None),
                        "readinessProbe.httpGet: 'port' is a required property"),
    "probe port named but absent": (lambda b: _container(b)["readinessProbe"]["httpGet"].update(port="admin"),
                                    "must contain the name of a container port"),
    "selector": (lambda b: b["spec"]["selector"]["matchLabels"].update({"vamp.io/name": "other"}),
                 "selector` does not match"),
    "label value": (lambda b: b["metadata"]["labels"].update(team="a b"), "metadata.labels"),
    "label key": (lambda b: b["metadata"]["labels"].update({"-x": "a"}), "metadata.labels"),
    "port name": (lambda b: _container(b)["ports"][0].update(name="web_port"), "ports[0].name"),
    "container name": (lambda b: _container(b).update(name="Service"), "containers[0].name"),
    "name": (lambda b: b["metadata"].update(name="Bad_Name"), "metadata.name"),
}


@pytest.mark.parametrize("case", INVALID_DEPLOYMENTS, ids=list(INVALID_DEPLOYMENTS))
def test_an_invalid_deployment_is_422_with_the_field(fake, case):
    change, field = INVALID_DEPLOYMENTS[case]
    body = _mutated(change)
    refused = raw(fake, "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", body)
    code = 400 if case in ("unknown field", "wrong type") else 422  # undecodable, or invalid
    assert refused.status_code == code and field in refused.json()["message"], refused.json()
    assert fake.objects("deployments", NS) == {}  # nothing half-written
    # The same through server-side apply.
    refused = raw(fake, "PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{body['metadata']['name']}", body,
                  "application/apply-patch+yaml", fieldManager="t")
    assert refused.status_code == code and field in refused.json()["message"]
    assert fake.objects("deployments", NS) == {}


def test_the_relaxed_env_rule_is_not_assumed(fake):
    # Printable ASCII other than '=' passes only where RelaxedEnvironmentVariableValidation is on;
    # the fake is the server without it, the stricter one.
    _, apps = apis(fake)
    body = _mutated(lambda b: _container(b)["env"].append({"name": "MY VAR", "value": "v"}))
    assert refusal(apps.create_namespaced_deployment, NS, body).status == 422


def test_valid_names_and_quantities_pass(fake):
    _, apps = apis(fake)
    body = _mutated(lambda b: _container(b)["env"].extend([{"name": "my.env-name", "value": "1"},
                                                           {"name": "_X", "value": "2"}]))
    _container(body)["resources"] = {"requests": {"memory": "256M", "cpu": "0.5"}, "limits": {"memory": "1Gi",
                                                                                              "cpu": "500m"}}
    apps.create_namespaced_deployment(NS, body)
    assert len(fake.objects("deployments", NS)) == 1


def test_an_invalid_service_is_422(fake):
    core, _ = apis(fake)
    good = service_manifest(NS, image_spec())
    for change, field in ((lambda b: b["spec"].update(ports=[]), "spec.ports"),
                          (lambda b: b["spec"]["ports"][0].update(port=70000), "spec.ports[0].port"),
                          (lambda b: b["metadata"].update(name="2x"), "DNS-1035"),
                          (lambda b: b["spec"].update(sessionAffinty="None"), "sessionAffinty")):
        body = copy.deepcopy(good)
        change(body)
        refused = raw(fake, "POST", f"/api/v1/namespaces/{NS}/services", body)
        assert refused.status_code in (400, 422) and field in refused.json()["message"], refused.json()
    created = core.create_namespaced_service(NS, good)
    ip = created.spec.cluster_ip
    moved = copy.deepcopy(good)
    moved["spec"]["clusterIP"] = "10.96.9.9"
    refused = refusal(core.patch_namespaced_service, good["metadata"]["name"], NS, moved, field_manager="t",
                      _content_type="application/apply-patch+yaml")
    assert refused.status == 422 and "immutable" in message(refused)
    assert core.read_namespaced_service(good["metadata"]["name"], NS).spec.cluster_ip == ip


def test_a_deployments_selector_is_immutable(fake):
    _, apps = apis(fake)
    body = valid_deployment()
    apps.create_namespaced_deployment(NS, body)
    changed = copy.deepcopy(body)
    changed["spec"]["selector"]["matchLabels"]["extra"] = "x"
    changed["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    refused = refusal(apps.patch_namespaced_deployment, body["metadata"]["name"], NS, changed, field_manager="t",
                      force=True, _content_type="application/apply-patch+yaml")
    assert refused.status == 422 and "spec.selector" in message(refused)


# -- patches ------------------------------------------------------------------------------------

def test_patch_types_as_the_api_server_takes_them(fake):
    _, apps = apis(fake)
    body = valid_deployment()
    name = body["metadata"]["name"]
    url = f"{fake.url}/apis/apps/v1/namespaces/{NS}/deployments/{name}"
    auth = {"Authorization": f"Bearer {fake.token}"}
    # apply without a field manager: 400; an unknown patch type: 415
    r = requests.patch(url, data=json.dumps(body), headers={**auth, "Content-Type": "application/apply-patch+yaml"},
                       timeout=5)
    assert r.status_code == 400 and "fieldManager" in r.json()["message"]
    r = requests.patch(url + "?fieldManager=t", data="x", headers={**auth, "Content-Type": "text/plain"}, timeout=5)
    assert r.status_code == 415
    # apply creates; the others need the object
    r = requests.patch(url, params={"fieldManager": "t"}, data=json.dumps({"metadata": {"labels": {"a": "b"}}}),
                       headers={**auth, "Content-Type": "application/merge-patch+json"}, timeout=5)
    assert r.status_code == 404
    apps.patch_namespaced_deployment(name, NS, body, field_manager="vamp", _content_type="application/apply-patch+yaml")
    # JSON patch, merge patch, strategic merge patch
    r = requests.patch(url, data=json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
                       headers={**auth, "Content-Type": "application/json-patch+json"}, timeout=5)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 3
    r = requests.patch(url, data=json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "envoy:1"}]}}}}),
        headers={**auth, "Content-Type": "application/strategic-merge-patch+json"}, timeout=5)
    containers = [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]]
    assert r.status_code == 200 and containers == ["service", "sidecar"]  # merged by name
    r = requests.patch(url, data=json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "x:1"}]}}}}), headers={**auth, "Content-Type": "application/merge-patch+json"},
        timeout=5)
    assert r.status_code == 200 and [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]] == ["only"]


def test_apply_conflicts_with_another_managers_field_unless_forced(fake):
    _, apps = apis(fake)
    body = valid_deployment()
    name = body["metadata"]["name"]
    apps.patch_namespaced_deployment(name, NS, body, field_manager="vamp", _content_type="application/apply-patch+yaml")
    apps.patch_namespaced_deployment(name, NS, {"spec": {"replicas": 5}}, field_manager="hpa")
    refused = refusal(apps.patch_namespaced_deployment, name, NS, body, field_manager="vamp",
                      _content_type="application/apply-patch+yaml")
    assert refused.status == 409 and 'conflict with "hpa"' in message(refused) and ".spec.replicas" in message(refused)
    apps.patch_namespaced_deployment(name, NS, body, field_manager="vamp", force=True,
                                     _content_type="application/apply-patch+yaml")
    assert apps.read_namespaced_deployment(name, NS).spec.replicas == 2


def test_a_put_with_a_stale_resource_version_is_409(fake):
    _, apps = apis(fake)
    body = valid_deployment()
    created = apps.create_namespaced_deployment(NS, body)
    stale = copy.deepcopy(body)
    stale["metadata"]["resourceVersion"] = created.metadata.resource_version
    apps.replace_namespaced_deployment(body["metadata"]["name"], NS, stale)
    assert refusal(apps.replace_namespaced_deployment, body["metadata"]["name"], NS, stale).status == 409


# -- namespaces ----------------------------------------------------------------------------------

def test_a_terminating_namespace_refuses_new_content_then_goes(fake):
    core, apps = apis(fake)
    apps.create_namespaced_deployment(NS, valid_deployment())
    core.delete_namespace(NS)
    assert core.read_namespace(NS).status.phase == "Terminating"
    other = deployment_manifest(NS, image_spec(service="other:1"))
    refused = refusal(apps.create_namespaced_deployment, NS, other)
    assert refused.status == 403 and f"namespace {NS} because it is being terminated" in message(refused)
    refused = refusal(apps.patch_namespaced_deployment, other["metadata"]["name"], NS, other, field_manager="t",
                      _content_type="application/apply-patch+yaml")
    assert refused.status == 403 and "being terminated" in message(refused)
    assert refusal(core.create_namespace, {"metadata": {"name": NS}}).status == 409
    fake.settle()
    assert refusal(core.read_namespace, NS).status == 404
    assert refusal(apps.create_namespaced_deployment, NS, other).status == 404
    assert fake.objects("deployments", NS) == {}


# -- failures on chosen requests -------------------------------------------------------------------

def test_failures_on_the_nth_matching_request_or_a_predicate(fake):
    core, apps = apis(fake)
    fake.fail(500, method="GET", path=f"/api/v1/namespaces/{NS}", nth=2)
    core.read_namespace(NS)
    assert refusal(core.read_namespace, NS).status == 500
    core.read_namespace(NS)  # only the second
    fake.fail(429, when=lambda method, path, body: method == "POST" and "deployments" in path, times=2)
    core.list_namespace()  # not a match
    assert refusal(apps.create_namespaced_deployment, NS, valid_deployment()).status == 429
    assert refusal(apps.create_namespaced_deployment, NS, valid_deployment()).status == 429
    apps.create_namespaced_deployment(NS, valid_deployment())
    assert len(fake.objects("deployments", NS)) == 1


# -- rollouts over time -----------------------------------------------------------------------------

def test_a_rollout_moves_step_by_step(fake):
    _, apps = apis(fake)
    body = deployment_manifest(NS, image_spec(instances=4))
    name = body["metadata"]["name"]
    apps.create_namespaced_deployment(NS, body)
    assert "observedGeneration" not in fake.objects("deployments", NS)[name]["status"]  # not seen yet
    fake.settle()
    status = apps.read_namespaced_deployment(name, NS).status
    assert (status.replicas, status.updated_replicas, status.available_replicas) == (4, 4, 4)
    assert {c.type: c.reason for c in status.conditions} == {"Available": "MinimumReplicasAvailable",
                                                             "Progressing": "NewReplicaSetAvailable"}
    new = copy.deepcopy(body)
    _container(new)["image"] = "magneticio/sava:2"
    apps.patch_namespaced_deployment(name, NS, new, field_manager="t", force=True,
                                     _content_type="application/apply-patch+yaml")
    history = []
    for _ in range(20):
        s = apps.read_namespaced_deployment(name, NS)
        history.append((s.metadata.generation, s.status.observed_generation, s.status.replicas or 0,
                        s.status.updated_replicas or 0, s.status.available_replicas or 0))
        fake.advance()
    assert history[0] == (2, 1, 4, 4, 4)  # generation 2 not observed yet: the old status still shows
    assert any(total > updated > 0 for _, _, total, updated, _ in history)  # old and new side by side
    assert all(available >= 3 for *_, available in history)  # maxUnavailable 25 % of 4
    assert all(total <= 5 for _, _, total, _, _ in history)  # maxSurge 25 % of 4
    assert history[-1] == (2, 2, 4, 4, 4)


def test_a_failing_rollout_reaches_its_progress_deadline(fake):
    _, apps = apis(fake)
    body = valid_deployment()
    name = body["metadata"]["name"]
    apps.create_namespaced_deployment(NS, body)
    fake.fail_rollout(NS, name, "CrashLoopBackOff")
    fake.advance(2)
    progressing = {c.type: c for c in apps.read_namespaced_deployment(name, NS).status.conditions}["Progressing"]
    assert progressing.status == "True" and progressing.reason == "ReplicaSetUpdated"  # not yet
    fake.settle()
    status = apps.read_namespaced_deployment(name, NS).status
    progressing = {c.type: c for c in status.conditions}["Progressing"]
    assert progressing.status == "False" and progressing.reason == "ProgressDeadlineExceeded"
    assert "CrashLoopBackOff" in progressing.message and not status.available_replicas
