"""Issue 10, findings 1 and 2, from the attacker's side, through the whole API (docs/decisions/0026):
a token holder may neither run a command inside the control plane on Lambda, nor reach a
Kubernetes node, the cluster's API or kube-system through `dialects.kubernetes` or a namespace.
Each refusal: the request, a 400 with the field and the reason, nothing stored, nothing started
or sent (the local driver's process records and this process's children; the fake API
server's request log), and the API still answering."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from chalicelib import drivers
from chalicelib.deployments.sync import sync_namespace
from chalicelib.drivers.local import LocalDriver
from chalicelib.settings import settings
from tests.drivers.helpers import SERVER


def blueprint(deployable: dict, **service) -> dict:
    return {"name": "shop", "clusters": {"web": {"services": [{"breed": {
        "name": "web:1", "deployable": deployable, "ports": {"port": "8080/http"}}, **service}]}}}


COMMAND = {"type": "command", "definition": SERVER}
IMAGE = {"type": "container/docker", "definition": "magneticio/sava:1.0.0"}


def children() -> set[int]:
    """This process's child processes (every thread's), from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def use_settings(monkeypatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()
    drivers.reset()


@pytest.fixture()
def forget_settings():
    yield
    settings.cache_clear()
    drivers.reset()


# -- finding 1: commands in the control plane ------------------------------------------------------

@pytest.fixture()
def on_lambda(api, monkeypatch, tmp_path, forget_settings):
    """The API as it runs on Lambda, with the local driver's records in a directory of its own."""
    use_settings(monkeypatch, AWS_LAMBDA_FUNCTION_NAME="vamp-dev", VAMP_LOCAL_WORK_DIR=str(tmp_path))
    return api, tmp_path


def test_on_lambda_a_command_deployable_is_refused_and_nothing_runs(on_lambda):
    api, work_dir = on_lambda
    before = children()
    r = api.post("/team/api/v1/deployments", blueprint(COMMAND))
    assert r.status_code == 400, r.body
    (error,) = r.json["errors"]
    assert error["path"] == "namespace" and "refused on Lambda" in error["reason"]
    assert api.get("/team/api/v1/deployments/shop").status_code == 404  # nothing stored
    assert api.get("/team/api/v1/breeds/web:1").status_code == 404  # not even the inline breed
    assert LocalDriver().running("team") == {}
    assert not list(work_dir.rglob("*"))  # no process record, no log: nothing was started
    assert children() == before
    assert api.get("/api/v1/info").status_code == 200


def test_on_lambda_a_deployment_stored_earlier_starts_no_process(api, monkeypatch, tmp_path, forget_settings):
    # Stored while the operator allowed the local driver (and not yet deployed), then
    # synchronised once it no longer is: the driver refuses, the status says why.
    from chalicelib.deployments import operations
    from chalicelib.drivers.base import ServiceSpec
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    use_settings(monkeypatch, VAMP_LOCAL_WORK_DIR=str(tmp_path), AWS_LAMBDA_FUNCTION_NAME="vamp-dev",
                 VAMP_ALLOW_LOCAL_DRIVER="true")
    monkeypatch.setattr("chalicelib.api.routes.deployments._sync", lambda *a: None)
    assert api.post("/team/api/v1/deployments", blueprint(COMMAND)).status_code == 202
    monkeypatch.delenv("VAMP_ALLOW_LOCAL_DRIVER")
    settings.cache_clear()
    drivers.reset()
    before = children()
    sync_namespace("team")
    stored = operations.get(DynamoDBArtifactStore(), "team", "shop").document
    (service,) = stored["clusters"]["web"]["services"]
    assert service["status"]["phase"]["name"] == "failed"
    assert "refused on Lambda" in service["status"]["phase"]["notification"]
    assert children() == before and not list(tmp_path.rglob("*"))
    # The driver itself refuses too, however it is reached.
    spec = ServiceSpec(deployment="shop", cluster="web", service="web:1", deployable_type="command",
                       definition="sleep 60")
    with pytest.raises(drivers.DriverError, match="refused on Lambda"):
        LocalDriver().deploy("team", spec)
    assert children() == before and not list(tmp_path.rglob("*"))
    api.delete("/team/api/v1/deployments/shop?force=true")


def test_on_lambda_the_operator_may_allow_the_local_driver(on_lambda, monkeypatch):
    api, _ = on_lambda
    use_settings(monkeypatch, VAMP_ALLOW_LOCAL_DRIVER="true")
    assert api.post("/team/api/v1/deployments?validate_only=true", blueprint(COMMAND)).status_code == 202


def test_off_lambda_the_local_driver_still_serves(api, forget_settings):
    assert api.post("/team/api/v1/deployments?validate_only=true", blueprint(COMMAND)).status_code == 202


# -- finding 2: Kubernetes takeover --------------------------------------------------------------

@pytest.fixture()
def kube(api, fake_kubernetes, tmp_path, monkeypatch, forget_settings):
    """The API with namespaces `team` and `kube-system` on Kubernetes (the fake, by kubeconfig)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake_kubernetes.url}}],
        "users": [{"name": "vamp", "user": {"token": fake_kubernetes.token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "vamp"}}]}))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    use_settings(monkeypatch, KUBECONFIG=str(kubeconfig),
                 VAMP_NAMESPACE_DRIVERS="team=kubernetes,kube-system=kubernetes,default=kubernetes")
    return api, fake_kubernetes


ATTACKS = {
    "hostNetwork": ({"hostNetwork": True}, "hostNetwork", "node's network"),
    "privileged": ({"containers": [{"name": "service", "securityContext": {"privileged": True}}]},
                   "containers[0].securityContext.privileged", "root on the node"),
    "hostPath /": ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "volumes[0].hostPath",
                   "node's filesystem"),
    "serviceAccountName": ({"serviceAccountName": "admin"}, "serviceAccountName", "Kubernetes API"),
}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
@pytest.mark.parametrize("level", ["service", "cluster", "deployment"])
def test_an_escaping_dialect_is_a_400_and_nothing_reaches_the_cluster(kube, attack, level):
    api, fake = kube
    dialect, field, reason = ATTACKS[attack]
    body = blueprint(IMAGE)
    if level == "service":
        body["clusters"]["web"]["services"][0]["dialects"] = {"kubernetes": dialect}
        prefix = "clusters.web.services[0].dialects.kubernetes"
    elif level == "cluster":
        body["clusters"]["web"]["dialects"] = {"kubernetes": dialect}
        prefix = "clusters.web.dialects.kubernetes"
    else:
        body["dialects"] = {"kubernetes": dialect}
        prefix = "dialects.kubernetes"
    r = api.post("/team/api/v1/deployments", body)
    assert r.status_code == 400, r.body
    (error,) = r.json["errors"]
    assert error["path"] == f"{prefix}.{field}" and reason in error["reason"]
    assert api.get("/team/api/v1/deployments/shop").status_code == 404
    assert fake.requests == []
    assert api.get("/api/v1/info").status_code == 200


def test_kube_system_deploys_into_its_own_prefixed_namespace(kube):
    api, fake = kube
    r = api.post("/kube-system/api/v1/deployments", blueprint(IMAGE))
    assert r.status_code == 202, r.body
    assert list(fake.objects("namespaces")) == ["vamp-kube-system"]
    assert len(fake.objects("deployments", "vamp-kube-system")) == 1
    assert fake.objects("deployments", "kube-system") == {}
    assert fake.requests and all("/namespaces/kube-system" not in path for _, path in fake.requests)
    api.delete("/kube-system/api/v1/deployments/shop?force=true")


def test_a_namespace_too_long_for_the_prefix_is_a_400(kube, monkeypatch):
    api, fake = kube
    long = "t" * 60
    use_settings(monkeypatch, VAMP_NAMESPACE_DRIVERS=f"{long}=kubernetes")
    r = api.post(f"/{long}/api/v1/deployments", blueprint(IMAGE))
    assert r.status_code == 400, r.body
    (error,) = r.json["errors"]
    assert error["path"] == "namespace" and "more than the 63" in error["reason"]
    assert api.get(f"/{long}/api/v1/deployments/shop").status_code == 404
    assert fake.requests == []


def test_the_operator_widens_one_namespace(kube, monkeypatch):
    api, fake = kube
    use_settings(monkeypatch, VAMP_KUBE_NAMESPACE_POLICIES='{"team": {"allow": ["hostAliases", "hostNetwork"], '
                                                           '"pod_security": "baseline"}}')
    body = blueprint(IMAGE, dialects={"kubernetes": {"hostNetwork": True}})
    r = api.post("/team/api/v1/deployments", body)
    assert r.status_code == 202, r.body
    assert api.post("/default/api/v1/deployments", body).status_code == 400  # only that namespace
    (dep,) = fake.objects("deployments", "vamp-team").values()
    assert dep["spec"]["template"]["spec"]["hostNetwork"] is True
    api.delete("/team/api/v1/deployments/shop?force=true")


# -- services' `arguments` (Vamp's docker run options): applied, or refused before storing --------

@pytest.mark.parametrize("where", ["service", "breed"])
def test_an_argument_the_policy_refuses_is_a_400_naming_it_and_nothing_reaches_the_cluster(kube, where):
    api, fake = kube
    body = blueprint(IMAGE)
    service = body["clusters"]["web"]["services"][0]
    (service if where == "service" else service["breed"])["arguments"] = [{"cap-add": "SYS_ADMIN"}]
    r = api.post("/team/api/v1/deployments", body)
    assert r.status_code == 400, r.body
    (error,) = r.json["errors"]
    prefix = "clusters.web.services[0]" + (".breed" if where == "breed" else "")
    assert error["path"] == f"{prefix}.arguments[0].cap-add", error
    assert "policy refuses" in error["reason"]
    assert api.get("/team/api/v1/deployments/shop").status_code == 404
    assert fake.requests == []


def test_arguments_kubernetes_has_reach_the_validated_deployment(kube):
    api, fake = kube
    body = blueprint(IMAGE, arguments=[{"read-only": "true"}, {"user": "1000:1000"}, {"label": "team=web"}])
    r = api.post("/team/api/v1/deployments", body)
    assert r.status_code == 202, r.body
    sync_namespace("team")
    (dep,) = fake.objects("deployments", "vamp-team").values()
    pod = dep["spec"]["template"]
    (box,) = pod["spec"]["containers"]
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["runAsUser"] == 1000 and box["securityContext"]["runAsGroup"] == 1000
    assert pod["metadata"]["labels"]["team"] == "web"
    assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]  # still hardened


def test_an_argument_the_local_driver_cannot_apply_is_a_400_and_nothing_runs(api):
    before = children()
    r = api.post("/api/v1/deployments", blueprint(COMMAND, arguments=[{"privileged": "true"}]))
    assert r.status_code == 400, r.body
    (error,) = r.json["errors"]
    assert error["path"] == "clusters.web.services[0].arguments[0].privileged"
    assert "local driver" in error["reason"]
    assert api.get("/api/v1/deployments/shop").status_code == 404
    assert children() == before
