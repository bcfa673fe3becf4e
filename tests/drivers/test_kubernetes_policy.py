"""A Vamp namespace's reach on Kubernetes, from the attacker's side (docs/decisions/0026): the
driver against the fake API server, which records every request, so "nothing sent" is checked
on what the API server saw."""
from __future__ import annotations

import pytest

from chalicelib.drivers import DriverError, Guarded
from chalicelib.drivers.kube_policy import KubeRules, NamespacePolicy, dialect_problems
from chalicelib.drivers.kubernetes import KubernetesDriver
from tests.drivers.helpers import image_spec
from tests.drivers.test_kubernetes import client_for


def driver_for(fake, **rules) -> KubernetesDriver:
    return KubernetesDriver(lambda: client_for(fake), KubeRules(**rules))


def pod_of(fake, kube_namespace: str) -> dict:
    (dep,) = fake.objects("deployments", kube_namespace).values()
    return dep["spec"]["template"]["spec"]


# Each: the dialect an attacker sends, and what the refusal must name.
ESCAPES = {
    "hostNetwork": ({"hostNetwork": True}, ".hostNetwork", "node's network"),
    "privileged": ({"containers": [{"name": "service", "securityContext": {"privileged": True}}]},
                   ".containers[0].securityContext.privileged", "root on the node"),
    "hostPath /": ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                    "containers": [{"name": "service", "volumeMounts": [{"name": "root", "mountPath": "/host"}]}]},
                   ".volumes[0].hostPath", "node's filesystem"),
    "serviceAccountName": ({"serviceAccountName": "cluster-admin"}, ".serviceAccountName", "Kubernetes API"),
    "hostPID": ({"hostPID": True}, ".hostPID", "node's processes"),
    "capabilities": ({"containers": [{"name": "service", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
                     ".containers[0].securityContext.capabilities.add", "NET_BIND_SERVICE"),
    "root": ({"securityContext": {"runAsUser": 0}}, ".securityContext.runAsUser", "0 is root"),
    "escalation": ({"initContainers": [{"name": "x", "image": "busybox",
                                        "securityContext": {"allowPrivilegeEscalation": True}}]},
                   ".initContainers[0].securityContext.allowPrivilegeEscalation", "setuid"),
    "nodeName": ({"nodeName": "control-plane-1"}, ".nodeName", "scheduler"),
    "probe to the metadata service": (
        {"containers": [{"name": "service", "livenessProbe": {"httpGet": {"host": "169.254.169.254", "port": 80}}}]},
        ".containers[0].livenessProbe.httpGet.host", "from the node"),
    "token volume": ({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]},
                     ".volumes[0].projected.sources[0].serviceAccountToken", "service account"),
    "unknown field": ({"ephemeralContainers": [{"name": "debug"}]}, ".ephemeralContainers", "not a field"),
}


@pytest.mark.parametrize("attack", ESCAPES, ids=list(ESCAPES))
def test_an_escaping_dialect_is_refused_and_nothing_reaches_the_api_server(fake_kubernetes, attack):
    dialect, path, reason = ESCAPES[attack]
    driver = Guarded(driver_for(fake_kubernetes))
    with pytest.raises(DriverError) as refused:
        driver.deploy("team-a", image_spec(dialects={"kubernetes": dialect}))
    assert f"dialects.kubernetes{path}: " in str(refused.value) and reason in str(refused.value)
    assert fake_kubernetes.requests == []  # not even the namespace was created
    problems = dialect_problems(dialect, NamespacePolicy())
    assert any(p == path and reason in r for p, r in problems), problems


def test_kube_system_is_out_of_reach(fake_kubernetes):
    driver = driver_for(fake_kubernetes)
    spec = image_spec()
    driver.deploy("kube-system", spec)
    assert list(fake_kubernetes.objects("namespaces")) == ["vamp-kube-system"]
    assert fake_kubernetes.objects("deployments", "kube-system") == {}
    assert all("/namespaces/kube-system" not in path for _, path in fake_kubernetes.requests)
    assert driver.running("kube-system") == {spec.key: spec.digest()}
    driver.undeploy("kube-system", "sava", "sava", "sava:1.0.0")
    assert fake_kubernetes.objects("deployments", "vamp-kube-system") == {}
    assert all("/namespaces/kube-system" not in path for _, path in fake_kubernetes.requests)


def test_a_namespace_too_long_for_its_prefix_is_refused_not_cut(fake_kubernetes):
    driver = Guarded(driver_for(fake_kubernetes))
    long = "a" * 59  # 64 characters with "vamp-"
    with pytest.raises(DriverError, match="more than the 63"):
        driver.deploy(long, image_spec())
    st = driver.status(long, ["a/b/c"])["a/b/c"]
    assert st.state == "failed" and "63" in st.reason
    assert fake_kubernetes.requests == []
    driver.deploy("a" * 58, image_spec())  # 63: fits
    assert list(fake_kubernetes.objects("namespaces")) == ["vamp-" + "a" * 58]


def test_a_namespace_that_is_not_vamps_is_refused(fake_kubernetes):
    # An operator's own namespace that happens to have the mapped name is never taken over.
    fake_kubernetes.handle("POST", "/api/v1/namespaces", {"metadata": {"name": "vamp-theirs", "labels": {}}})
    with pytest.raises(DriverError, match="not managed by vamp"):
        driver_for(fake_kubernetes).deploy("theirs", image_spec())
    assert fake_kubernetes.objects("deployments", "vamp-theirs") == {}


def test_the_operator_sets_the_level_per_namespace_and_a_change_relabels(fake_kubernetes):
    policies = '{"legacy": {"pod_security": "baseline", "harden": false}}'
    driver_for(fake_kubernetes, policies=policies).deploy("legacy", image_spec())
    labels = fake_kubernetes.objects("namespaces")["vamp-legacy"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert "securityContext" not in pod_of(fake_kubernetes, "vamp-legacy")  # images that must run as root
    driver_for(fake_kubernetes).deploy("legacy", image_spec())  # the policy is gone: restricted again
    labels = fake_kubernetes.objects("namespaces")["vamp-legacy"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert pod_of(fake_kubernetes, "vamp-legacy")["securityContext"]["runAsNonRoot"] is True


def test_a_namespace_policy_widens_the_allowlist_for_that_namespace_only(fake_kubernetes):
    policies = ('{"nodes": {"pod_security": "privileged", "allow": ["hostNetwork", "volumes.hostPath", '
                '"containers.securityContext"]}}')
    dialect = {"hostNetwork": True, "volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}],
               "containers": [{"name": "service", "securityContext": {"privileged": True}}]}
    driver = driver_for(fake_kubernetes, policies=policies)
    driver.deploy("nodes", image_spec(dialects={"kubernetes": dialect}))
    pod = pod_of(fake_kubernetes, "vamp-nodes")
    assert pod["hostNetwork"] is True and pod["volumes"][0]["hostPath"] == {"path": "/var/log"}
    assert pod["containers"][0]["securityContext"]["privileged"] is True
    before = list(fake_kubernetes.requests)
    with pytest.raises(DriverError, match="hostNetwork"):
        driver.deploy("other", image_spec(dialects={"kubernetes": dialect}))
    assert fake_kubernetes.requests == before


def test_safe_dialects_pass_and_sidecars_are_hardened_too(fake_kubernetes):
    dialect = {"nodeSelector": {"pool": "a"}, "tolerations": [{"key": "k", "operator": "Exists"}],
               "priorityClassName": "high", "terminationGracePeriodSeconds": 5,
               "automountServiceAccountToken": False, "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
               "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c"}}],
               "containers": [{"name": "service", "resources": {"limits": {"memory": "512Mi"}},
                               "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                               "securityContext": {"readOnlyRootFilesystem": True,
                                                   "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}},
                              {"name": "sidecar", "image": "envoy:1"}]}
    assert dialect_problems(dialect, NamespacePolicy()) == []
    driver = driver_for(fake_kubernetes)
    spec = image_spec(dialects={"kubernetes": dialect})
    driver.deploy("team-b", spec)
    pod = pod_of(fake_kubernetes, "vamp-team-b")
    assert pod["securityContext"] == {"runAsUser": 1000, "fsGroup": 2000, "runAsNonRoot": True,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    service, sidecar = pod["containers"]
    assert service["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                          "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}
    assert sidecar["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    # Pod Security (the fake applies it as the API server does) admits the hardened pod.
    fake_kubernetes.settle()
    assert driver.status("team-b", [spec.key])[spec.key].state == "running"


def test_without_the_default_hardening_restricted_refuses_the_pods(fake_kubernetes):
    # harden: false under a restricted namespace: the Deployment is stored, its pods are not
    # (the ReplicaSet's failure), and the status says why.
    driver = driver_for(fake_kubernetes, policies='{"x": {"harden": false}}')
    spec = image_spec()
    driver.deploy("x", spec)
    fake_kubernetes.settle()
    st = driver.status("x", [spec.key])[spec.key]
    assert st.state == "failed" and "violates PodSecurity" in st.reason and "runAsNonRoot" in st.reason


@pytest.mark.parametrize("raw, message", [
    ("{", "not JSON"),
    ('{"a": {"pod_security": "lax"}}', "pod_security must be one of"),
    ('{"a": {"allow": "hostNetwork"}}', "allow must be a list"),
    ('{"a": {"harden": "no"}}', "harden must be true or false"),
    ('{"a": {"root": true}}', "a map of allow, harden, pod_security expected"),
    ("@/nonexistent/policy.json", "cannot read"),
])
def test_a_broken_policy_is_a_reason_and_nothing_is_sent(fake_kubernetes, raw, message):
    with pytest.raises(DriverError, match=message):
        Guarded(driver_for(fake_kubernetes, policies=raw)).deploy("a", image_spec())
    assert fake_kubernetes.requests == []


def test_a_policy_file(tmp_path, fake_kubernetes):
    path = tmp_path / "policy.json"
    path.write_text('{"edge": {"allow": ["hostAliases", "securityContext.sysctls"]}}')
    rules = KubeRules(policies=f"@{path}")
    assert rules.policy("edge").allows("securityContext.sysctls")
    assert not rules.policy("edge").allows("hostNetwork") and not rules.policy("other").allows("hostAliases")
